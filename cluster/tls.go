package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/tollgate/tollgate/pki"
)

// ErrPeerRefused: a peer's certificate is not a node certificate of this
// cluster's CA.
var ErrPeerRefused = errors.New("peer refused")

// fileStamp tells a changed file from an unchanged one.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// certStore holds the node's certificate, key and cluster CA, read from
// their files, and reads them again on the next handshake after any of the
// files changed (its modification time or size). A file that does not
// parse, or a certificate that does not name this node, keeps the last good
// set and is logged once per change.
type certStore struct {
	caFile, certFile, keyFile string
	nodeID                    string
	log                       *slog.Logger

	mu     sync.Mutex
	stamps [3]fileStamp
	pair   *tls.Certificate
	pool   *x509.CertPool
}

func newCertStore(caFile, certFile, keyFile, nodeID string, log *slog.Logger) (*certStore, error) {
	s := &certStore{caFile: caFile, certFile: certFile, keyFile: keyFile, nodeID: nodeID, log: log}
	stamps, err := s.stat()
	if err != nil {
		return nil, err
	}
	if err := s.load(stamps); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *certStore) stat() ([3]fileStamp, error) {
	var out [3]fileStamp
	for i, f := range []string{s.caFile, s.certFile, s.keyFile} {
		st, err := stampOf(f)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = st
	}
	return out, nil
}

// load reads the three files; mu is held (or s is not shared yet).
func (s *certStore) load(stamps [3]fileStamp) error {
	s.stamps = stamps // a bad set is not read again until it changes
	caPEM, err := os.ReadFile(s.caFile)
	if err != nil {
		return fmt.Errorf("tls CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("tls CA %s: no PEM certificate", s.caFile)
	}
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("tls certificate %s: %w", s.certFile, err)
		}
		pair.Leaf = leaf
	}
	id, err := pki.NodeID(leaf)
	if err != nil {
		return fmt.Errorf("tls certificate %s: %w", s.certFile, err)
	}
	if id != s.nodeID {
		return fmt.Errorf("tls certificate %s names node %q, this node is %q", s.certFile, id, s.nodeID)
	}
	if _, err := verifyNode(pair.Certificate, pool, x509.ExtKeyUsageClientAuth); err != nil {
		return fmt.Errorf("tls certificate %s is not signed by the CA in %s: %w", s.certFile, s.caFile, err)
	}
	s.pair, s.pool = &pair, pool
	return nil
}

// current returns the certificate and CA pool, read again when a file
// changed.
func (s *certStore) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stat()
	if err == nil && stamps != s.stamps {
		if err = s.load(stamps); err == nil {
			s.log.Info("tls: read the node certificate again", "cert", s.certFile, "not_after", s.pair.Leaf.NotAfter)
		} else {
			s.log.Warn("tls: the changed files do not make a valid node certificate; keeping the last one", "err", err)
		}
	}
	return s.pair, s.pool
}

// verifyNode checks a peer's chain against the cluster CA and that its
// leaf is a node certificate, and returns the node id it names.
func verifyNode(rawCerts [][]byte, pool *x509.CertPool, usage x509.ExtKeyUsage) (string, error) {
	if len(rawCerts) == 0 {
		return "", fmt.Errorf("%w: no certificate", ErrPeerRefused)
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrPeerRefused, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrPeerRefused, err)
	}
	id, err := pki.NodeID(certs[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPeerRefused, err)
	}
	return id, nil
}

// serverTLS requires a client certificate that is a node certificate of
// the cluster CA and names a node that known knows (a member of the
// cluster). The CA is the one current at each handshake, so the check is
// made here rather than by crypto/tls's static ClientCAs.
func (s *certStore) serverTLS(known func(id string) bool, nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, _ := s.current()
			return c, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			id, err := verifyNode(rawOf(cs.PeerCertificates), pool, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return err
			}
			if !known(id) {
				return fmt.Errorf("%w: its certificate names node %q, which is no member of this cluster", ErrPeerRefused, id)
			}
			return nil
		},
	}
}

// clientTLS presents this node's certificate and requires the server's to
// be a node certificate of the cluster CA that names node id, the member
// the connection is dialed for. Peers are dialed by address, so the host
// name is not what is checked: InsecureSkipVerify only turns off
// crypto/tls's static check, VerifyConnection makes this one.
func (s *certStore) clientTLS(id string, nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         nextProtos,
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, _ := s.current()
			return c, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			got, err := verifyNode(rawOf(cs.PeerCertificates), pool, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if got != id {
				return fmt.Errorf("%w: its certificate names node %q, dialed as node %q", ErrPeerRefused, got, id)
			}
			return nil
		},
	}
}

func rawOf(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

// refusals logs a refused peer once per host and window, so a peer that
// retries (or floods) does not fill the log.
type refusals struct {
	log    *slog.Logger
	now    func() time.Time
	window time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

func newRefusals(log *slog.Logger, now func() time.Time) *refusals {
	return &refusals{log: log, now: now, window: time.Minute, last: map[string]time.Time{}}
}

// allow says whether key is due a log line now.
func (r *refusals) allow(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.window {
		return false
	}
	if len(r.last) > 4096 {
		for k, t := range r.last {
			if now.Sub(t) >= r.window {
				delete(r.last, k)
			}
		}
	}
	r.last[key] = now
	return true
}

// note logs a peer refused at the TLS handshake: one that connected to
// this node, or (dialed) one this node connected to.
func (r *refusals) note(plane string, dialed bool, addr string, err error) {
	host := addr
	if h, _, serr := net.SplitHostPort(host); serr == nil {
		host = h
	}
	side := "in"
	if dialed {
		side = "out"
	}
	if r.allow(plane + " " + side + " " + host) {
		r.log.Warn("refused a peer at the TLS handshake (logged once a minute per address)", "plane", plane, "peer", addr, "dialed", dialed, "err", err)
	}
}

// tlsListener hands Raft only connections that finished a TLS handshake
// as a node of the cluster; others are closed and logged. Handshakes run
// in their own goroutines, so a slow peer does not hold up others.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	refused *refusals
	ready   chan net.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

const handshakeTimeout = 10 * time.Second

func newTLSListener(ln net.Listener, cfg *tls.Config, refused *refusals) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{Listener: ln, cfg: cfg, refused: refused, ready: make(chan net.Conn), ctx: ctx, cancel: cancel}
	l.wg.Add(1)
	go l.accept()
	return l
}

func (l *tlsListener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			select { // a transient error (out of files): back off
			case <-time.After(50 * time.Millisecond):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if l.ctx.Err() == nil {
			l.refused.note("raft", false, c.RemoteAddr().String(), err)
		}
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.Listener.Close()
		l.wg.Wait()
	})
	return err
}

// loggedCreds are gRPC's TLS credentials that log a refused handshake
// with the peer's address, as server and as client.
type loggedCreds struct {
	credentials.TransportCredentials
	refused *refusals
}

func (c loggedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.refused.note("grpc", false, conn.RemoteAddr().String(), err)
	}
	return out, info, err
}

// ClientHandshake logs a server this node dialed and refused (its
// certificate is not the member's it was dialed for).
func (c loggedCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if errors.Is(err, ErrPeerRefused) {
		c.refused.note("grpc", true, conn.RemoteAddr().String(), err)
	}
	return out, info, err
}

func (c loggedCreds) Clone() credentials.TransportCredentials {
	return loggedCreds{TransportCredentials: c.TransportCredentials.Clone(), refused: c.refused}
}

// gossipLogFilter passes memberlist's log through, but lets a refusal
// about one peer (a packet it cannot decrypt or with another label, a
// stream it cannot read) through once per window and peer address.
type gossipLogFilter struct {
	out     io.Writer
	refused *refusals
}

var gossipPeer = regexp.MustCompile(`memberlist: (Decrypt packet failed|discarding packet with unacceptable label|discarding stream with unacceptable label|failed to receive|failed to receive and remove the stream label header).* from=([^\s:]+|\[[^\]]+\])`)

func (f gossipLogFilter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		if m := gossipPeer.FindSubmatch(line); m != nil && !f.refused.allow("gossip "+string(m[2])) {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if out.Len() > 0 {
		if _, err := f.out.Write(out.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
