# Regenerating the protobuf code needs protoc (Debian: protobuf-compiler) and
# the two Go plugins at the versions pinned here. The generated code is
# committed: building and testing never need these tools.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0

.PHONY: proto proto-tools test images tollgate deploy/caddy/caddy

# The images docker-compose.yml runs, built from source (no registry is
# needed: both start from scratch around a static binary built here).
TOLLGATE_IMAGE ?= tollgate:local
CADDY_IMAGE    ?= tollgate-caddy:local
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT         ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

images: tollgate deploy/caddy/caddy
	docker build -t $(TOLLGATE_IMAGE) .
	docker build -t $(CADDY_IMAGE) deploy/caddy

tollgate:
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)' -o tollgate ./cmd/tollgate

deploy/caddy/caddy:
	cd deploy/caddy && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o caddy .

proto-tools:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

proto:
	PATH="$$(go env GOPATH)/bin:$$PATH" protoc -I proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/tollgate.proto

test:
	bash .ci/run
