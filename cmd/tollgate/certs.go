package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/admin"
	"github.com/tollgate/tollgate/pki"
	"github.com/tollgate/tollgate/rules"
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
			wrote, err := initFiles(dir, name, force, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", strings.Join(wrote, ", "))
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
			var addrs []net.IP
			for _, s := range splitList(ips) {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--ip %q is not an IP address", s)
				}
				addrs = append(addrs, ip)
			}
			if out == "" {
				out = nodeDir
			}
			wrote, err := issueNode(nodeDir, out, id, addrs)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (node %s, valid until %s)\n", strings.Join(wrote, " and "), id, time.Now().Add(pki.NodeValidity).Format(time.DateOnly))
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
	var clusterDir string
	var nodes []string
	clusterCmd := &cobra.Command{
		Use:   "cluster",
		Short: "Make whatever of a cluster's files --dir lacks: CA, gossip and key-encryption keys, a certificate per --nodes id, and an admin credential (admin.credentials)",
		Long: `Make whatever of a cluster's files --dir lacks, and keep the others: run it again
and it changes nothing. For deployments that start every node from one shared
directory, such as the compose file: the CA's key stays beside the nodes' files, so
only use it where every node is trusted with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids := splitList(nodes)
			if len(ids) == 0 {
				return errors.New("--nodes: name at least one node id")
			}
			wrote, err := initFiles(clusterDir, name, false, true)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := os.Stat(filepath.Join(clusterDir, id+".crt")); err == nil {
					continue
				}
				w, err := issueNode(clusterDir, clusterDir, id, nil)
				if err != nil {
					return err
				}
				wrote = append(wrote, w...)
			}
			credFile := filepath.Join(clusterDir, adminCredentialsFileName)
			if _, err := os.Stat(credFile); errors.Is(err, os.ErrNotExist) {
				c := admin.NewCredential(rules.RoleAdmin, "first admin")
				line := fmt.Sprintf("# made by tollgate certs cluster; the bearer token: tollgate admin-credentials token --file %s\n%s %s %s %s\n", credFile, c.ID, c.Secret, c.Role, c.Name)
				if err := writePrivate(credFile, []byte(line)); err != nil {
					return err
				}
				wrote = append(wrote, credFile)
			}
			if len(wrote) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s holds every file already\n", clusterDir)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", strings.Join(wrote, ", "))
			return nil
		},
	}
	clusterCmd.Flags().StringVar(&clusterDir, "dir", "./tollgate-certs", "directory for the files")
	clusterCmd.Flags().StringSliceVar(&nodes, "nodes", nil, "comma-separated node ids to make certificates for")
	clusterCmd.Flags().StringVar(&name, "name", "Tollgate cluster CA", "the CA's common name")
	_ = clusterCmd.MarkFlagRequired("nodes")

	certs.AddCommand(initCmd, nodeCmd, gossipCmd, clusterCmd)
	return certs
}

// adminCredentialsFileName is the admin credentials file certs cluster
// writes (the format of serve --admin-credentials-file).
const adminCredentialsFileName = "admin.credentials"

// initFiles makes a CA, a gossip key and a key-encryption key in dir.
// Existing files are an error unless force (replace them) or missingOnly
// (keep them, make the others: a CA whose key is missing is an error,
// as a new one would not match the certificates it signed). It returns
// the files written.
func initFiles(dir, name string, force, missingOnly bool) ([]string, error) {
	exists := func(f string) bool { _, err := os.Stat(filepath.Join(dir, f)); return err == nil }
	type file struct {
		name string
		make func() ([]byte, error)
	}
	var files []file
	switch {
	case missingOnly && exists("ca.crt") != exists("ca.key"):
		return nil, fmt.Errorf("%s holds only one of ca.crt and ca.key: restore the other, or remove both to make a new CA", dir)
	case !missingOnly || !exists("ca.crt"):
		ca, err := pki.NewCA(name, time.Now())
		if err != nil {
			return nil, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		files = append(files,
			file{"ca.crt", func() ([]byte, error) { return ca.CertPEM(), nil }},
			file{"ca.key", func() ([]byte, error) { return keyPEM, nil }})
	}
	// The key-encryption key has the gossip key's format: one base64
	// AES-256 key a line.
	files = append(files, file{"gossip.key", pki.NewGossipKey}, file{"kek.key", pki.NewGossipKey})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if !force && !missingOnly {
		for _, f := range files {
			if exists(f.name) {
				return nil, fmt.Errorf("%s exists: a new CA would lock out every node it signed; add --force to replace it", filepath.Join(dir, f.name))
			}
		}
	}
	var wrote []string
	for _, f := range files {
		if missingOnly && exists(f.name) {
			continue
		}
		b, err := f.make()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, f.name)
		if err := writePrivate(path, b); err != nil {
			return nil, err
		}
		wrote = append(wrote, path)
	}
	return wrote, nil
}

// issueNode makes a certificate for node id, signed by the CA in caDir,
// into out, and returns the files written.
func issueNode(caDir, out, id string, addrs []net.IP) ([]string, error) {
	if !nodeIDPattern.MatchString(id) {
		return nil, fmt.Errorf("node id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	ca, err := pki.LoadCA(filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key"))
	if err != nil {
		return nil, fmt.Errorf("read the CA (tollgate certs init makes it): %w", err)
	}
	certPEM, keyPEM, err := ca.IssueNode(id, addrs, time.Now())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	// Key first: a node reading the pair between the two renames finds a
	// mismatch, keeps its certificate and reads again on the next change.
	certFile, keyFile := filepath.Join(out, id+".crt"), filepath.Join(out, id+".key")
	if err := writePrivate(keyFile, keyPEM); err != nil {
		return nil, err
	}
	if err := writePrivate(certFile, certPEM); err != nil {
		return nil, err
	}
	return []string{certFile, keyFile}, nil
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
