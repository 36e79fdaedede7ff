package cluster

import (
	"context"
	"fmt"
	"os"

	"github.com/tollgate/tollgate/pki"
	"github.com/tollgate/tollgate/sealing"
)

// ReadKEKs reads a key-encryption key file: the gossip key file's format,
// one base64 32-byte key per line, the first one wraps, the others still
// unwrap (rotation).
func ReadKEKs(path string) ([]*sealing.KEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	raws, err := pki.ParseGossipKeys(b)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	keks := make([]*sealing.KEK, 0, len(raws))
	for _, r := range raws {
		k, err := sealing.NewKEK(r)
		if err != nil {
			return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
		}
		keks = append(keks, k)
	}
	return keks, nil
}

// Keys returns the keys derived from the cluster's data key, proposing a
// fresh data key first when the cluster has none.
func (n *Node) Keys(ctx context.Context) (*sealing.Keys, error) {
	return n.sealKeys.Ensure(ctx, n, "node:"+n.ID())
}

// KeysIfSet returns the keys of the data key in the configuration this
// node has applied: sealing.ErrNoDataKey when there is none, or why this
// node cannot unwrap it.
func (n *Node) KeysIfSet() (*sealing.Keys, error) {
	return n.sealKeys.Keys(n.fsm.Config().GetDataKey())
}
