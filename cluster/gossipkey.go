package cluster

import (
	"bytes"
	"fmt"
	"os"

	"github.com/tollgate/tollgate/pki"
)

// readGossipKeys reads a gossip key file and its stamp.
func readGossipKeys(path string) ([][]byte, fileStamp, error) {
	st, err := stampOf(path)
	if err != nil {
		return nil, st, fmt.Errorf("gossip key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, st, fmt.Errorf("gossip key: %w", err)
	}
	keys, err := pki.ParseGossipKeys(b)
	if err != nil {
		return nil, st, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return keys, st, nil
}

// reloadGossipKeys, run every KeyReloadInterval, reads the gossip key file
// again when it changed since it was last read and makes memberlist's
// keyring match it: every key in the file is accepted, the first one
// encrypts, keys no longer in the file are dropped. Rotation: add the new
// key as a second line on every node, then make it the first line on
// every node, then remove the old line.
func (n *Node) reloadGossipKeys() {
	st, err := stampOf(n.cfg.GossipKeyFile)
	if err != nil || st == n.keyStamp {
		return
	}
	keys, st, err := readGossipKeys(n.cfg.GossipKeyFile)
	n.keyStamp = st
	if err != nil {
		n.log.Warn("gossip key file changed but cannot be used; keeping the keys in use", "err", err)
		return
	}
	for _, k := range keys {
		if err := n.keyring.AddKey(k); err != nil {
			n.log.Warn("gossip key refused", "err", err)
			return
		}
	}
	if err := n.keyring.UseKey(keys[0]); err != nil {
		n.log.Warn("gossip key refused", "err", err)
		return
	}
	for _, old := range n.keyring.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || bytes.Equal(k, old)
		}
		if !keep {
			_ = n.keyring.RemoveKey(old)
		}
	}
	n.log.Info("gossip keys read again", "keys", len(keys))
}
