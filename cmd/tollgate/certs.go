package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/pki"
)

// certsCmd makes the files of the cluster's transport security: a CA and
// gossip key once, then a certificate per node.
func certsCmd() *cobra.Command {
	certs := &cobra.Command{
		Use:   "certs",
		Short: "Make the cluster CA, the gossip key, the key-encryption key and node certificates (files, mode 0600)",
	}
	var dir, name string
	var force bool
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Make a cluster CA (ca.crt, ca.key), a gossip key (gossip.key) and a key-encryption key (kek.key) in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := pki.NewCA(name, time.Now())
			if err != nil {
				return err
			}
			keyPEM, err := ca.KeyPEM()
			if err != nil {
				return err
			}
			gossip, err := pki.NewGossipKey()
			if err != nil {
				return err
			}
			kek, err := pki.NewGossipKey() // the same format: one base64 AES-256 key a line
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			files := []struct {
				name string
				b    []byte
			}{{"ca.crt", ca.CertPEM()}, {"ca.key", keyPEM}, {"gossip.key", gossip}, {"kek.key", kek}}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil && !force {
					return fmt.Errorf("%s exists: a new CA would lock out every node it signed; add --force to replace it", filepath.Join(dir, f.name))
				}
			}
			for _, f := range files {
				if err := writePrivate(filepath.Join(dir, f.name), f.b); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s, %s and %s\n", filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), filepath.Join(dir, "gossip.key"), filepath.Join(dir, "kek.key"))
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "./tollgate-certs", "directory for the files")
	initCmd.Flags().StringVar(&name, "name", "Tollgate cluster CA", "the CA's common name")
	initCmd.Flags().BoolVar(&force, "force", false, "replace existing files")

	var nodeDir, id, out string
	var ips []string
	nodeCmd := &cobra.Command{
		Use:   "node",
		Short: "Make a node certificate (<id>.crt, <id>.key) signed by the CA in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !nodeIDPattern.MatchString(id) {
				return fmt.Errorf("--id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
			}
			var addrs []net.IP
			for _, s := range splitList(ips) {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--ip %q is not an IP address", s)
				}
				addrs = append(addrs, ip)
			}
			ca, err := pki.LoadCA(filepath.Join(nodeDir, "ca.crt"), filepath.Join(nodeDir, "ca.key"))
			if err != nil {
				return fmt.Errorf("read the CA (tollgate certs init makes it): %w", err)
			}
			certPEM, keyPEM, err := ca.IssueNode(id, addrs, time.Now())
			if err != nil {
				return err
			}
			if out == "" {
				out = nodeDir
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			// Key first: a node reading the pair between the two renames
			// finds a mismatch, keeps its certificate and reads again on
			// the next change.
			certFile, keyFile := filepath.Join(out, id+".crt"), filepath.Join(out, id+".key")
			if err := writePrivate(keyFile, keyPEM); err != nil {
				return err
			}
			if err := writePrivate(certFile, certPEM); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (node %s, valid until %s)\n", certFile, keyFile, id, time.Now().Add(pki.NodeValidity).Format(time.DateOnly))
			return nil
		},
	}
	nodeCmd.Flags().StringVar(&nodeDir, "dir", "./tollgate-certs", "directory holding ca.crt and ca.key")
	nodeCmd.Flags().StringVar(&id, "id", "", "the node's id (its --node-id)")
	nodeCmd.Flags().StringSliceVar(&ips, "ip", nil, "comma-separated IP addresses to name in the certificate [none: peers check the node id, not the address]")
	nodeCmd.Flags().StringVar(&out, "out", "", "directory for the node's files [--dir]")
	_ = nodeCmd.MarkFlagRequired("id")

	gossipCmd := &cobra.Command{
		Use:   "gossip-key",
		Short: "Print a new gossip key (for rotation: see the README's Security section)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := pki.NewGossipKey()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(k)
			return err
		},
	}
	certs.AddCommand(initCmd, nodeCmd, gossipCmd)
	return certs
}

// writePrivate writes b to path with mode 0600, through a temporary file
// renamed into place, so a node reading it sees the old or the new file.
func writePrivate(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// certNodeID returns the node id a certificate file names.
func certNodeID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--tls-cert: %w", err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		return "", fmt.Errorf("--tls-cert %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		return "", fmt.Errorf("--tls-cert %s: %w", path, err)
	}
	id, err := pki.NodeID(c)
	if errors.Is(err, pki.ErrNotNodeCert) {
		return "", fmt.Errorf("--tls-cert %s: %w; make one with tollgate certs node", path, err)
	}
	return id, err
}
