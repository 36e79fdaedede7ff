package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/tollgate/tollgate/admin"
)

// serveConfig is everything `tollgate serve` reads from flags, the config
// file (--config) and TOLLGATE_* environment variables, in that order of
// precedence.
type serveConfig struct {
	NodeID        string
	DataDir       string
	Listen        string
	AdminListen   string
	AdminInsecure bool
	// AdminHosts are the Host values the admin API answers besides its
	// listen address and localhost (admin.Config.AllowedHosts).
	AdminHosts []string
	// AdminCredentialsFile holds admin credentials the node adds at start
	// when the cluster lacks them.
	AdminCredentialsFile string
	RaftListen           string
	GRPCListen           string
	GossipListen         string
	AdvertiseAddr        string
	Join                 []string
	BootstrapExpect      int
	ReapAfter            time.Duration
	MaxClockSkew         time.Duration
	LogLevel             string
	LogFormat            string
	ShutdownTimeout      time.Duration
	// MaxConnections caps the data plane's open connections; MaxRequests
	// the requests it serves at once (0: no cap).
	MaxConnections int
	MaxRequests    int
	// AllowUpstream lists prefixes upstreams may be at although link-local
	// or this node's own listeners.
	AllowUpstream []netip.Prefix
	// RaftFast uses tight Raft timings (tests on loopback only).
	RaftFast bool
	// TLSCA, TLSCert, TLSKey and GossipKey are the files of the cluster's
	// transport security (all four or none); ClusterInsecure allows
	// non-loopback cluster listeners without them.
	TLSCA, TLSCert, TLSKey, GossipKey string
	ClusterInsecure                   bool
	// KEK is the key-encryption key file the cluster's data key is
	// wrapped under ("": stored unwrapped).
	KEK string
}

// secure says whether the cluster's transport is authenticated and
// encrypted.
func (c *serveConfig) secure() bool { return c.TLSCA != "" }

func addServeFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (YAML, JSON or TOML) holding any of these flags by name")
	fs.String("node-id", "", "this node's id [generated once, persisted in the data dir]")
	fs.String("data-dir", "./tollgate-data", "where Raft's log, snapshots and the node id live")
	fs.String("listen", ":8080", "data plane listen address (port 0 picks a free port)")
	fs.String("admin-listen", "127.0.0.1:9090", "admin API listen address")
	fs.StringSlice("admin-host", nil, "a name or address (optionally :port) the admin API also answers as, e.g. behind a proxy or a published container port; repeatable or comma-separated, \"*\" for any. Other Host headers get 403 [its listen address, and localhost, 127.0.0.1 and [::1] on its port]")
	fs.Bool("admin-insecure", false, "allow a non-loopback --admin-listen without --admin-credentials-file, and answer callers on other hosts without a credential while the cluster has none")
	fs.String("admin-credentials-file", "", "admin credentials to add at start when the cluster lacks them: one a line, \"id secret role [name]\" (mode 0600); the admin API serves once they are in")
	fs.String("raft-listen", "", "Raft listen address [127.0.0.1:7000; :7000 with TLS or --cluster-insecure]")
	fs.String("grpc-listen", "", "node-to-node gRPC listen address [127.0.0.1:7001; :7001 with TLS or --cluster-insecure]")
	fs.String("gossip-listen", "", "gossip (memberlist) listen address [127.0.0.1:7946; :7946 with TLS or --cluster-insecure]")
	fs.String("advertise-addr", "", "address peers dial to reach this node [127.0.0.1; the first non-loopback address with TLS or --cluster-insecure]")
	fs.String("tls-ca", "", "cluster CA certificate file (PEM): peers must present a node certificate it signed (tollgate certs init)")
	fs.String("tls-cert", "", "this node's certificate file (PEM), naming its node id (tollgate certs node); read again when it changes")
	fs.String("tls-key", "", "this node's private key file (PEM); read again when it changes")
	fs.String("gossip-key", "", "gossip key file: base64 AES-256 keys, one a line, the first one in use (tollgate certs init); read again when it changes")
	fs.String("key-encryption-key", "", "key-encryption key file: base64 AES-256 keys, one a line (tollgate certs init writes kek.key); the first wraps the data key API key values are sealed under, the others still unwrap (rotation); read again when it changes [none: the data key is stored unwrapped in the data dir]")
	fs.Bool("cluster-insecure", false, "allow non-loopback Raft, gRPC and gossip listeners without --tls-* and --gossip-key: anyone who reaches them can join the cluster and change it")
	fs.StringSlice("join", nil, "comma-separated gossip addresses of nodes to join [none]")
	fs.Int("bootstrap-expect", 1, "nodes to wait for (by gossip) before bootstrapping Raft once")
	fs.Duration("reap-after", 3*time.Minute, "how long a dead node stays in Raft before it is removed (never below quorum)")
	fs.Duration("max-clock-skew", time.Second, "how far this node's clock may differ from the leader's before /healthz and the log say so (quota periods always follow the leader's clock)")
	fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("log-format", "text", "log format: text or json")
	fs.Duration("shutdown-timeout", 15*time.Second, "how long a stop waits for requests in flight and the last usage report")
	fs.Int("max-connections", 10000, "most data plane connections open at once; more wait in the listen backlog until one closes (0: no cap)")
	fs.Int("max-requests", 5000, "most data plane requests served at once; more are answered 503 with Retry-After (0: no cap)")
	fs.StringSlice("allow-upstream", nil, "comma-separated CIDRs (or addresses) stage urls may reach although link-local (169.254.0.0/16, fe80::/10, cloud metadata) or this node's own ports [none]")
	fs.Bool("raft-fast", false, "tight Raft timings, for tests on loopback")
	_ = fs.MarkHidden("raft-fast")
}

// loadServeConfig merges flags, file and environment.
func loadServeConfig(fs *pflag.FlagSet) (*serveConfig, error) {
	v := viper.New()
	v.SetEnvPrefix("TOLLGATE")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(fs); err != nil {
		return nil, err
	}
	if file := v.GetString("config"); file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
		known := map[string]bool{}
		fs.VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, k := range v.AllKeys() {
			if !known[k] {
				return nil, fmt.Errorf("config file %s: unknown setting %q", file, k)
			}
		}
	}
	c := &serveConfig{
		NodeID:               v.GetString("node-id"),
		DataDir:              v.GetString("data-dir"),
		Listen:               v.GetString("listen"),
		AdminListen:          v.GetString("admin-listen"),
		AdminInsecure:        v.GetBool("admin-insecure"),
		AdminHosts:           splitList(v.GetStringSlice("admin-host")),
		AdminCredentialsFile: v.GetString("admin-credentials-file"),
		RaftListen:           v.GetString("raft-listen"),
		GRPCListen:           v.GetString("grpc-listen"),
		GossipListen:         v.GetString("gossip-listen"),
		AdvertiseAddr:        v.GetString("advertise-addr"),
		Join:                 splitList(v.GetStringSlice("join")),
		BootstrapExpect:      v.GetInt("bootstrap-expect"),
		ReapAfter:            v.GetDuration("reap-after"),
		MaxClockSkew:         v.GetDuration("max-clock-skew"),
		LogLevel:             v.GetString("log-level"),
		LogFormat:            v.GetString("log-format"),
		ShutdownTimeout:      v.GetDuration("shutdown-timeout"),
		RaftFast:             v.GetBool("raft-fast"),
		MaxConnections:       v.GetInt("max-connections"),
		MaxRequests:          v.GetInt("max-requests"),
		TLSCA:                v.GetString("tls-ca"),
		TLSCert:              v.GetString("tls-cert"),
		TLSKey:               v.GetString("tls-key"),
		GossipKey:            v.GetString("gossip-key"),
		ClusterInsecure:      v.GetBool("cluster-insecure"),
		KEK:                  v.GetString("key-encryption-key"),
	}
	c.defaultClusterListens()
	var errs []error
	for _, s := range splitList(v.GetStringSlice("allow-upstream")) {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--allow-upstream %q: want a CIDR (169.254.169.254/32) or an address", s))
			continue
		}
		c.AllowUpstream = append(c.AllowUpstream, p)
	}
	return c, errors.Join(append(errs, c.validate())...)
}

// parsePrefix parses a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// splitList accepts both repeated flags and comma-separated values (as the
// environment gives them).
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (c *serveConfig) validate() error {
	var errs []error
	if c.NodeID != "" && !nodeIDPattern.MatchString(c.NodeID) {
		errs = append(errs, fmt.Errorf("--node-id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", c.NodeID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	for _, a := range []struct{ flag, addr string }{
		{"--listen", c.Listen}, {"--admin-listen", c.AdminListen}, {"--raft-listen", c.RaftListen},
		{"--grpc-listen", c.GRPCListen}, {"--gossip-listen", c.GossipListen},
	} {
		if err := checkListen(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.flag, a.addr, err))
		}
	}
	if c.AdvertiseAddr != "" {
		if ip := net.ParseIP(c.AdvertiseAddr); ip == nil || ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("--advertise-addr %q: give an IP address peers can dial", c.AdvertiseAddr))
		}
	}
	errs = append(errs, c.checkClusterExposure())
	for i, j := range c.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil {
			host, port = j, "7946"
		}
		p, perr := strconv.Atoi(port)
		if host == "" || (net.ParseIP(host) == nil && !hostnamePattern.MatchString(host)) || perr != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("--join %q: want host or host:port (the gossip port, 7946 by default)", j))
			continue
		}
		c.Join[i] = net.JoinHostPort(host, port)
	}
	if c.BootstrapExpect < 1 {
		errs = append(errs, fmt.Errorf("--bootstrap-expect must be 1 or more, got %d", c.BootstrapExpect))
	}
	if c.ReapAfter <= 0 {
		errs = append(errs, fmt.Errorf("--reap-after must be positive, got %s", c.ReapAfter))
	}
	if c.MaxClockSkew <= 0 {
		errs = append(errs, fmt.Errorf("--max-clock-skew must be positive, got %s", c.MaxClockSkew))
	}
	for _, h := range c.AdminHosts {
		if err := admin.CheckAllowedHost(h); err != nil {
			errs = append(errs, fmt.Errorf("--admin-host %q: want a name or an address, optionally with :port ([::1]:9090 for IPv6), or \"*\"", h))
		}
	}
	if err := checkAdminExposure(c.AdminListen, c.AdminInsecure || c.AdminCredentialsFile != ""); err != nil {
		errs = append(errs, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("--max-connections must be 0 (no cap) or more, got %d", c.MaxConnections))
	}
	if c.MaxRequests < 0 {
		errs = append(errs, fmt.Errorf("--max-requests must be 0 (no cap) or more, got %d", c.MaxRequests))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout must be positive, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// defaultClusterListens fills the cluster listeners left unset: loopback
// unless the transport is secure or the operator allowed it insecure.
func (c *serveConfig) defaultClusterListens() {
	host := "127.0.0.1"
	if c.secure() || c.ClusterInsecure {
		host = ""
	}
	for _, l := range []struct {
		addr *string
		port string
	}{{&c.RaftListen, "7000"}, {&c.GRPCListen, "7001"}, {&c.GossipListen, "7946"}} {
		if *l.addr == "" {
			*l.addr = net.JoinHostPort(host, l.port)
		}
	}
}

// checkClusterExposure refuses cluster listeners or an advertised address
// other hosts can reach while the cluster's transport has no TLS and no
// gossip key, unless the operator insists.
func (c *serveConfig) checkClusterExposure() error {
	set := 0
	for _, f := range []string{c.TLSCA, c.TLSCert, c.TLSKey, c.GossipKey} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 4 {
		return errors.New("give --tls-ca, --tls-cert, --tls-key and --gossip-key together (tollgate certs init and tollgate certs node make them)")
	}
	if set == 4 || c.ClusterInsecure {
		return nil
	}
	var open []string
	for _, a := range []struct{ flag, addr string }{
		{"--raft-listen", c.RaftListen}, {"--grpc-listen", c.GRPCListen}, {"--gossip-listen", c.GossipListen},
	} {
		host, _, err := net.SplitHostPort(a.addr)
		if err == nil && !isLoopback(host) {
			open = append(open, fmt.Sprintf("%s %q", a.flag, a.addr))
		}
	}
	if c.AdvertiseAddr != "" && !isLoopback(c.AdvertiseAddr) {
		open = append(open, fmt.Sprintf("--advertise-addr %q", c.AdvertiseAddr))
	}
	if len(open) == 0 {
		return nil
	}
	return fmt.Errorf("%s reachable from other hosts, and the cluster has no TLS: anyone who reaches these ports can join the cluster, vote and change its configuration. Give --tls-ca, --tls-cert, --tls-key and --gossip-key (tollgate certs init, tollgate certs node), keep the cluster listeners on loopback, or add --cluster-insecure if a private network protects them",
		strings.Join(open, ", ")+map[bool]string{true: " is", false: " are"}[len(open) == 1])
}

// isLoopback says whether host (an IP address, localhost or empty for all
// interfaces) is loopback only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port or :port")
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return errors.New("the host must be an IP address, localhost or empty (all interfaces)")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

// checkAdminExposure refuses an admin API reachable from other hosts unless
// credentials come with the node (--admin-credentials-file) or the
// operator insists: without a credential it answers only loopback callers.
func checkAdminExposure(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || insecure {
		return nil
	}
	if isLoopback(host) {
		return nil
	}
	return fmt.Errorf("--admin-listen %q is reachable from other hosts, and this node brings no admin credentials: until one exists the admin API answers only callers on this host. Give --admin-credentials-file, bind it to loopback (127.0.0.1:9090) and create one with tollgate admin-credentials create, or add --admin-insecure to let every caller in until then (if a firewall protects it)", addr)
}

// resolveNodeID returns the node id persisted in the data dir, creating it
// on first start. A --node-id that differs from the persisted one is an
// error: Raft knows the node by that id.
func resolveNodeID(dataDir, flagID string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		stored := strings.TrimSpace(string(b))
		if !nodeIDPattern.MatchString(stored) {
			return "", fmt.Errorf("%s holds an invalid node id %q", path, stored)
		}
		if flagID != "" && flagID != stored {
			return "", fmt.Errorf("--node-id %q differs from the id %q this data dir belongs to (%s); use that id or another data dir", flagID, stored, path)
		}
		return stored, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := flagID
	if id == "" {
		var r [4]byte
		_, _ = rand.Read(r[:])
		id = "node-" + hex.EncodeToString(r[:])
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("persist node id: %w", err)
	}
	return id, nil
}

// advertiseIP is the address peers dial: the flag, or (when the cluster
// may be reached from other hosts) the first non-loopback address of this
// host, or loopback.
func advertiseIP(flag string, exposed bool) (string, bool) {
	if flag != "" {
		return flag, true
	}
	if !exposed {
		return "127.0.0.1", true
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() && n.IP.To4() != nil {
				return n.IP.String(), true
			}
		}
	}
	return "127.0.0.1", false
}
