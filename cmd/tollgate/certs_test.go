package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/pki"
)

func runCerts(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := certsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestCertsCommand: init writes a CA, a gossip key and a key-encryption
// key, mode 0600, and
// will not replace them without --force; node writes a certificate the CA
// signed, naming the node id, valid 2 years, that serve reads the id from;
// gossip-key prints a key the key file format takes.
func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCerts(t, "init", "--dir", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.crt", "ca.key", "gossip.key", "kek.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	if keks, err := cluster.ReadKEKs(filepath.Join(dir, "kek.key")); err != nil || len(keks) != 1 {
		t.Fatalf("kek.key: %d keys, %v", len(keks), err)
	}
	if g, k := mustRead(t, filepath.Join(dir, "gossip.key")), mustRead(t, filepath.Join(dir, "kek.key")); bytes.Equal(g, k) {
		t.Fatal("the key-encryption key is the gossip key")
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if _, err := runCerts(t, "init", "--dir", dir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a second init: %v, want a refusal naming --force", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); !bytes.Equal(after, caBefore) {
		t.Fatal("a refused init changed ca.crt")
	}
	if out, err := runCerts(t, "node", "--dir", dir, "--id", "n1", "--ip", "10.0.0.1"); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "n1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("the node certificate does not verify: %v", err)
	}
	if id, err := certNodeID(filepath.Join(dir, "n1.crt")); err != nil || id != "n1" {
		t.Fatalf("node id %q %v", id, err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "n1" || len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.0.0.1" {
		t.Fatalf("SANs: %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if d := time.Until(cert.NotAfter); d < pki.NodeValidity-2*time.Hour || d > pki.NodeValidity {
		t.Fatalf("valid for %s", d)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "n1.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("n1.key mode %v", fi.Mode())
	}
	if _, err := runCerts(t, "node", "--dir", dir, "--id", "bad id"); err == nil {
		t.Fatal("a bad node id was accepted")
	}
	key, err := runCerts(t, "gossip-key")
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := pki.ParseGossipKeys([]byte(key)); err != nil || len(keys) != 1 {
		t.Fatalf("gossip-key printed %q: %v", key, err)
	}
	if out, err := runCerts(t, "init", "--dir", dir, "--force"); err != nil {
		t.Fatalf("init --force: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCertsClusterMakesOnlyWhatIsMissing: certs cluster makes every file
// of a cluster once, and run again keeps them (a new CA would lock out
// the nodes), adding only what a new --nodes id needs; the credentials
// file it writes gives an admin bearer token.
func TestCertsClusterMakesOnlyWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCerts(t, "cluster", "--dir", dir, "--nodes", "tg1,tg2"); err != nil {
		t.Fatalf("cluster: %v\n%s", err, out)
	}
	files := []string{"ca.crt", "ca.key", "gossip.key", "kek.key", "tg1.crt", "tg1.key", "tg2.crt", "tg2.key", adminCredentialsFileName}
	before := map[string][]byte{}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", f, err)
		}
		before[f] = mustRead(t, filepath.Join(dir, f))
	}
	out, err := runCerts(t, "cluster", "--dir", dir, "--nodes", "tg1,tg2,tg3")
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "tg3.crt") || strings.Contains(out, "ca.crt") {
		t.Fatalf("second run wrote %q, want only tg3's files", out)
	}
	for _, f := range files {
		if !bytes.Equal(before[f], mustRead(t, filepath.Join(dir, f))) {
			t.Fatalf("the second run changed %s", f)
		}
	}
	if out, err := runCerts(t, "cluster", "--dir", dir, "--nodes", "tg1"); err != nil || !strings.Contains(out, "every file already") {
		t.Fatalf("third run: %v, %q", err, out)
	}
	if _, err := runCerts(t, "cluster", "--dir", dir, "--nodes", "bad id"); err == nil {
		t.Fatal("a node id with a space was accepted")
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := runCerts(t, "cluster", "--dir", dir, "--nodes", "tg1"); err == nil || !strings.Contains(err.Error(), "only one of ca.crt and ca.key") {
		t.Fatalf("a CA without its key: %v", err)
	}

	creds, warn, err := readCredentialsFile(filepath.Join(dir, adminCredentialsFileName))
	if err != nil || warn != "" || len(creds) != 1 || creds[0].Role != "admin" {
		t.Fatalf("credentials file: %+v, %q, %v", creds, warn, err)
	}
	cmd := adminCredentialsCmd()
	var buf bytes.Buffer
	cmd.SetOut(&buf)
	cmd.SetArgs([]string{"token", "--file", filepath.Join(dir, adminCredentialsFileName)})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != creds[0].ID+"."+creds[0].Secret {
		t.Fatalf("token %q, want the file's id.secret", got)
	}
}
