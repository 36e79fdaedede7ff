// Command tollgate runs a Tollgate gateway node and its tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/tollgate/tollgate/admin"
	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/console"
	"github.com/tollgate/tollgate/notify"
	"github.com/tollgate/tollgate/proxy"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tollgate",
		Short:         "Tollgate: a self-hosted, clustered API gateway that sells and polices API access",
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       currentVersion().Version, // adds --version
	}
	root.SetVersionTemplate(currentVersion().String())
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run a gateway node (alone, it is a cluster of one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd.Flags())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cfg)
		},
	}
	addServeFlags(serve.Flags())
	root.AddCommand(serve)
	root.AddCommand(loadtestCmd())
	root.AddCommand(benchCmd())
	root.AddCommand(certsCmd())
	root.AddCommand(adminCredentialsCmd())
	root.AddCommand(plansCmd(), keysCmd(), usageCmd(), stagesCmd(), clusterCmd())
	root.AddCommand(versionCmd())
	root.AddCommand(upstreamCmd())
	return root
}

func newLogger(cfg *serveConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// runServe wires one node: Raft and the FSM, the quota pool, the admin API
// and the data plane; then it waits for a signal and stops them in order.
func runServe(ctx context.Context, cfg *serveConfig) (err error) {
	base := newLogger(cfg)
	privateUmask() // the data dir holds key values: see umask_unix.go
	flagID := cfg.NodeID
	if flagID == "" && cfg.secure() {
		// The certificate names the node: a fresh data dir takes its id.
		if flagID, err = certNodeID(cfg.TLSCert); err != nil {
			return err
		}
	}
	var fileCreds []admin.Credential
	if cfg.AdminCredentialsFile != "" {
		var warn string
		if fileCreds, warn, err = readCredentialsFile(cfg.AdminCredentialsFile); err != nil {
			return err
		}
		if warn != "" {
			base.Warn(warn)
		}
	}
	nodeID, err := resolveNodeID(cfg.DataDir, flagID)
	if err != nil {
		return err
	}
	log := base.With("node", nodeID)
	clock := faultClock(log)
	adv, found := advertiseIP(cfg.AdvertiseAddr, cfg.secure() || cfg.ClusterInsecure)
	if !found {
		log.Warn("no non-loopback address found; advertising loopback", "advertise", adv)
	}

	timings, gossipTimings, reconcile := cluster.RaftTimings{}, cluster.GossipTimings{}, time.Duration(0)
	if cfg.RaftFast {
		timings, gossipTimings, reconcile = cluster.FastRaftTimings(), cluster.FastGossipTimings(), 200*time.Millisecond
	}
	raftLevel := "warn"
	if cfg.LogLevel == "debug" {
		raftLevel = "debug"
	}
	node, err := cluster.Open(cluster.NodeConfig{
		NodeID:            nodeID,
		DataDir:           cfg.DataDir,
		RaftListen:        cfg.RaftListen,
		RaftAdvertise:     adv,
		GRPCListen:        cfg.GRPCListen,
		GossipListen:      cfg.GossipListen,
		Advertise:         adv,
		Join:              cfg.Join,
		BootstrapExpect:   cfg.BootstrapExpect,
		ReapAfter:         cfg.ReapAfter,
		ReconcileInterval: reconcile,
		ClockProbe:        reconcile, // 0 takes the default
		Gossip:            gossipTimings,
		Timings:           timings,
		Logger:            base, // the node adds its id
		RaftLogLevel:      raftLevel,
		Now:               clock,
		TLSCAFile:         cfg.TLSCA,
		TLSCertFile:       cfg.TLSCert,
		TLSKeyFile:        cfg.TLSKey,
		GossipKeyFile:     cfg.GossipKey,
		KEKFile:           cfg.KEK,
	})
	if err != nil {
		return fmt.Errorf("start cluster node: %w", err)
	}
	defer func() {
		if cerr := node.Close(); cerr != nil {
			log.Error("close raft", "err", cerr)
		}
	}()
	if cfg.secure() {
		log.Info("cluster transport: mutual TLS on Raft and gRPC, gossip encrypted", "ca", cfg.TLSCA, "cert", cfg.TLSCert)
	} else if cfg.ClusterInsecure {
		log.Warn("cluster transport without TLS (--cluster-insecure): whoever reaches the Raft, gRPC and gossip ports can join and change the cluster")
	}
	if cfg.KEK == "" {
		log.Warn("key values are sealed under a data key stored unwrapped in the data dir: whoever reads the data dir can unseal them; give --key-encryption-key FILE (tollgate certs init writes kek.key)")
	}
	log.Info("listening", "plane", "raft", "addr", node.RaftAddr())
	log.Info("listening", "plane", "grpc", "addr", node.GRPCAddr())
	log.Info("listening", "plane", "gossip", "addr", node.GossipAddr())
	// Bind both planes now, so a port of 0 is known at once; connections
	// wait in the backlog until the node serves.
	dataLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("data plane listen on %s: %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		dataLn.Close()
		return fmt.Errorf("admin listen on %s: %w", cfg.AdminListen, err)
	}
	defer dataLn.Close()
	defer adminLn.Close()
	if cfg.MaxConnections > 0 {
		// Beyond the cap, connections wait in the kernel's backlog; each
		// closed one lets the next in.
		dataLn = netutil.LimitListener(dataLn, cfg.MaxConnections)
	}
	log.Info("listening", "plane", "data", "addr", dataLn.Addr().String())
	log.Info("listening", "plane", "admin", "addr", adminLn.Addr().String())

	ledgerCounted := &ledgerErrors{LedgerClient: node}
	pool, err := cluster.NewQuotaPool(cluster.QuotaPoolConfig{
		NodeID: nodeID, Ledger: ledgerCounted, LiveNodes: node.LiveNodes, Logger: log,
		Now: clock, MaxClockSkew: cfg.MaxClockSkew,
	})
	if err != nil {
		return err
	}
	// Keys ask again as soon as the log frees quota, and hand back what
	// they hold when it revokes it.
	node.OnQuotaChange(pool.Event)
	pool.Start()
	shares, err := cluster.NewShareBook(cluster.ShareBookConfig{NodeID: nodeID, Exchange: node, Now: clock, Logger: log})
	if err != nil {
		return err
	}
	shares.Start()
	defer shares.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerClusterMetrics(reg, node, pool, ledgerCounted)
	adminSrv, err := admin.New(admin.Config{
		Store: node, Registry: reg, Logger: log, AllowedHosts: cfg.AdminHosts, AnonymousRemote: cfg.AdminInsecure,
		ClusterStatus: func() any { return node.ClusterStatus() },
		Ready:         node.CaughtUp,
		Problem:       func() error { return errors.Join(node.KeysProblem(), node.LogProblem()) },
		Progress: func() (uint64, uint64) {
			r := node.Readiness()
			return r.AppliedIndex, r.TargetIndex
		},
	})
	if err != nil {
		return err
	}
	upstreams := proxy.UpstreamPolicy{
		Allow:      cfg.AllowUpstream,
		OwnPorts:   listenerPorts(dataLn.Addr().String(), adminLn.Addr().String(), node.RaftAddr(), node.GRPCAddr(), node.GossipAddr()),
		LocalAddrs: hostAddrs(adv),
	}
	con, err := console.New(console.Config{API: adminSrv, Gatherer: reg, Now: clock, Logger: log})
	if err != nil {
		return err
	}
	con.Start()
	defer con.Close()
	px, err := proxy.New(proxy.Config{
		Source: node, Ledger: ledger{pool}, Logger: log, Metrics: reg,
		Shares: shares, Clock: proxy.ClockFunc(clock), Keys: node.KeysIfSet,
		Ready:         func() bool { return node.CaughtUp() && node.LogProblem() == nil },
		MaxConcurrent: int64(cfg.MaxRequests), NodeID: nodeID,
		Upstreams: upstreams,
	})
	if err != nil {
		return err
	}
	defer px.Close()
	// Quota notices: the leader's, to webhooks under the data plane's
	// upstream policy, on the ledger's calendar.
	notifyCfg := notify.Config{NodeID: nodeID, Cluster: node, Control: upstreams.DialControl, Logger: log, Registerer: reg,
		Now: func() time.Time { return clock().Add(node.CalendarOffset()) }}
	if cfg.RaftFast {
		notifyCfg.Interval, notifyCfg.Backoff = 100*time.Millisecond, 100*time.Millisecond
	}
	notifier, err := notify.New(notifyCfg)
	if err != nil {
		return err
	}
	notifier.Start()
	defer notifier.Close()

	dataHTTP := newServer(px, log)
	adminHTTP := newServer(con.Handler(), log)
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(dataHTTP, dataLn) }()
	if len(fileCreds) > 0 {
		// The admin API serves once the file's credentials are in, so
		// nobody reaches it in the meantime without one.
		log.Info("adding the admin credentials file's credentials before serving the admin API", "file", cfg.AdminCredentialsFile)
		if err := node.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("admin credentials file: %w", err)
		}
		if err := addFileCredentials(ctx, node, nodeID, fileCreds, log); err != nil {
			return fmt.Errorf("admin credentials file: %w", err)
		}
	}
	go func() { errc <- serveHTTP(adminHTTP, adminLn) }()
	// Until this node applied the log it had (or, fresh, the leader's
	// state), both planes answer 503 with Retry-After and /healthz says
	// so: a stale state would refuse valid keys and list nothing.
	if !node.CaughtUp() {
		r := node.Readiness()
		log.Info("serving; answering 503 until this node catches up with the cluster",
			"applied_index", r.AppliedIndex, "target_index", r.TargetIndex)
	}
	readyCtx, readyCancel := context.WithCancel(ctx)
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		if node.WaitCaughtUp(readyCtx) == nil {
			v := currentVersion()
			log.Info("tollgate is ready", "version", v.Version, "commit", v.Commit)
			warnNoCredentials(log, node.Config(), cfg.AdminInsecure)
		}
	}()
	defer func() {
		readyCancel()
		<-readyDone
	}()

	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err = <-errc:
		log.Error("server failed", "err", err)
	}

	// Ordered shutdown: stop taking requests and finish those in flight,
	// then report the last counts and hand back unspent quota through Raft,
	// then stop Raft (deferred).
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	if serr := dataHTTP.Shutdown(sctx); serr != nil {
		log.Warn("data plane shutdown", "err", serr)
	}
	if serr := adminHTTP.Shutdown(sctx); serr != nil {
		log.Warn("admin shutdown", "err", serr)
	}
	if perr := pool.Close(sctx); perr != nil {
		log.Warn("quota pool shutdown", "err", perr)
	}
	log.Info("stopped")
	return err
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func serveHTTP(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ledger adapts the cluster's quota pool to the proxy's Ledger.
type ledger struct{ pool *cluster.QuotaPool }

func (l ledger) Counter(planID, keyID string) proxy.QuotaCounter {
	return l.pool.Counter(planID, keyID)
}

// listenerPorts returns the ports of the given host:port addresses.
func listenerPorts(addrs ...string) []uint16 {
	var ports []uint16
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 {
				ports = append(ports, uint16(n))
			}
		}
	}
	return ports
}

// hostAddrs returns the addresses of this host's interfaces and the
// advertised one.
func hostAddrs(advertise string) []netip.Addr {
	var out []netip.Addr
	if a, err := netip.ParseAddr(advertise); err == nil {
		out = append(out, a.Unmap())
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
