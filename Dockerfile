# Tollgate's image: one static binary and nothing else. Build the binary
# first (no registry is needed: the image starts from scratch):
#   CGO_ENABLED=0 go build -o tollgate ./cmd/tollgate
#   docker build -t tollgate .
FROM scratch
COPY tollgate /tollgate
COPY --chown=65532:65532 deploy/data /data
COPY --chown=65532:65532 deploy/pki /pki
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080 9090 7000 7001 7946 7946/udp
ENTRYPOINT ["/tollgate"]
CMD ["serve", "--data-dir", "/data"]
