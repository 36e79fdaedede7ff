package main

import (
	"os"
	"path/filepath"
	"slices"
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

// TestAdminHostSources reads --admin-host from flags (repeated or
// comma-separated), the environment and the config file, as every flag.
func TestAdminHostSources(t *testing.T) {
	c, err := parseServe(t, "--admin-host", "admin.example.com", "--admin-host", "10.0.0.5:9090,[::1]:8443")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin.example.com", "10.0.0.5:9090", "[::1]:8443"}; !slices.Equal(c.AdminHosts, want) {
		t.Fatalf("flags: %q, want %q", c.AdminHosts, want)
	}

	t.Setenv("TOLLGATE_ADMIN_HOST", "a.example,b.example:1")
	c, err = parseServe(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example", "b.example:1"}; !slices.Equal(c.AdminHosts, want) {
		t.Fatalf("env: %q, want %q", c.AdminHosts, want)
	}
	os.Unsetenv("TOLLGATE_ADMIN_HOST")

	file := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(file, []byte("admin-host: [\"gw.internal\", \"gw.internal:9443\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = parseServe(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gw.internal", "gw.internal:9443"}; !slices.Equal(c.AdminHosts, want) {
		t.Fatalf("file: %q, want %q", c.AdminHosts, want)
	}

	c, err = parseServe(t)
	if err != nil || len(c.AdminHosts) != 0 {
		t.Fatalf("default: %q %v, want none", c.AdminHosts, err)
	}
}

func TestAdminHostRefusesGarbage(t *testing.T) {
	for _, h := range []string{"http://admin.example.com", "a b", "x:0", "::1"} {
		_, err := parseServe(t, "--admin-host", h)
		if err == nil || !strings.Contains(err.Error(), "--admin-host") {
			t.Errorf("--admin-host %q: %v, want an error naming the flag", h, err)
		}
	}
}

// TestKEKSources reads --key-encryption-key from the flag, the environment
// and the config file.
func TestKEKSources(t *testing.T) {
	if c, err := parseServe(t); err != nil || c.KEK != "" {
		t.Fatalf("default: %q %v", c.KEK, err)
	}
	if c, err := parseServe(t, "--key-encryption-key", "flag.key"); err != nil || c.KEK != "flag.key" {
		t.Fatalf("flag: %q %v", c.KEK, err)
	}
	file := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(file, []byte("key-encryption-key: file.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := parseServe(t, "--config", file); err != nil || c.KEK != "file.key" {
		t.Fatalf("config file: %q %v", c.KEK, err)
	}
	t.Setenv("TOLLGATE_KEY_ENCRYPTION_KEY", "env.key")
	if c, err := parseServe(t); err != nil || c.KEK != "env.key" {
		t.Fatalf("environment: %q %v", c.KEK, err)
	}
}
