package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func parseServe(t *testing.T, args ...string) (*serveConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return loadServeConfig(fs)
}

// TestClusterExposure: without TLS the cluster listeners default to
// loopback and a non-loopback one (or advertised address) is refused
// unless --cluster-insecure; with the four files (flags or TOLLGATE_*
// environment) they default to all interfaces; a partial set is refused.
func TestClusterExposure(t *testing.T) {
	c, err := parseServe(t)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.RaftListen != "127.0.0.1:7000" || c.GRPCListen != "127.0.0.1:7001" || c.GossipListen != "127.0.0.1:7946" {
		t.Fatalf("defaults without TLS: %s %s %s", c.RaftListen, c.GRPCListen, c.GossipListen)
	}
	for _, args := range [][]string{
		{"--raft-listen", "0.0.0.0:0"}, {"--grpc-listen", ":7001"}, {"--gossip-listen", "10.0.0.1:7946"},
		{"--advertise-addr", "10.0.0.1"},
	} {
		_, err := parseServe(t, args...)
		if err == nil || !strings.Contains(err.Error(), "reachable from other hosts") || !strings.Contains(err.Error(), "--cluster-insecure") {
			t.Errorf("%v: %v, want a refusal naming --cluster-insecure", args, err)
		}
		if _, err := parseServe(t, append(args, "--cluster-insecure")...); err != nil {
			t.Errorf("%v --cluster-insecure: %v", args, err)
		}
	}
	c, err = parseServe(t, "--cluster-insecure")
	if err != nil || c.RaftListen != ":7000" {
		t.Fatalf("--cluster-insecure defaults: %v %v", c, err)
	}
	if _, err := parseServe(t, "--tls-ca", "ca.crt"); err == nil || !strings.Contains(err.Error(), "together") {
		t.Fatalf("a partial TLS set: %v", err)
	}
	t.Setenv("TOLLGATE_TLS_CA", "ca.crt")
	t.Setenv("TOLLGATE_TLS_CERT", "n1.crt")
	t.Setenv("TOLLGATE_TLS_KEY", "n1.key")
	t.Setenv("TOLLGATE_GOSSIP_KEY", "gossip.key")
	c, err = parseServe(t, "--advertise-addr", "10.0.0.1")
	if err != nil {
		t.Fatalf("TLS from the environment: %v", err)
	}
	if c.TLSCA != "ca.crt" || c.TLSCert != "n1.crt" || c.TLSKey != "n1.key" || c.GossipKey != "gossip.key" || c.RaftListen != ":7000" {
		t.Fatalf("TLS from the environment: %+v", c)
	}
}
