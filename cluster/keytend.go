package cluster

import (
	"context"
	"errors"
	"slices"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// Tending the cluster's data key and the key values sealed under it.
//
// Every node, every ReconcileInterval: reads its key-encryption key file
// again when it changed, and logs once (and again only when it changes)
// that it cannot unwrap the cluster's data key. The leader, besides:
// makes sure the cluster has a data key, rewraps it under the first
// key-encryption key of its file when it is stored unwrapped or under an
// older key, and seals the plain values keys written before values were
// sealed still carry, sealBatch at a time.

const (
	sealBatch      = 256 // plain values one SealApiKeys seals
	maxSealBatches = 16  // SealApiKeys commands of one pass
)

// keyTending is tendKeys' state (its goroutine only).
type keyTending struct {
	kekStamp fileStamp       // the key-encryption key file as last read
	problem  string          // the unwrap problem last logged, "" for none
	clean    *pb.Config      // a configuration found without plain values
	skip     map[string]bool // keys left unsealed: another key holds their value
}

// KeysProblem tells why this node cannot look API keys up: the cluster
// has a data key this node cannot unwrap (its key-encryption key file
// lacks the key the data key is wrapped under). It is nil otherwise,
// also while the cluster has no data key yet. It is cheap when nil.
func (n *Node) KeysProblem() error {
	if _, err := n.KeysIfSet(); err != nil && !errors.Is(err, sealing.ErrNoDataKey) {
		return err
	}
	return nil
}

// tendKeys is one pass of the loop above.
func (n *Node) tendKeys() {
	n.reloadKEKs()
	problem := n.KeysProblem()
	n.reportKeysProblem(problem)
	if problem != nil || !n.IsLeader() || !n.CaughtUp() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	keys, err := n.Keys(ctx)
	if err != nil {
		n.log.Warn("cannot make sure the cluster has a data key; trying again", "err", err)
		return
	}
	n.rewrapDataKey(ctx)
	n.sealPlainValues(ctx, keys)
}

// reportKeysProblem logs an unwrap problem when it is new, and its end.
func (n *Node) reportKeysProblem(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == n.tend.problem {
		return
	}
	if msg == "" {
		n.log.Info("this node unwraps the cluster's data key again: it serves API keys")
	} else {
		n.log.Error("this node cannot unwrap the cluster's data key: it serves no API key and reports not ready until its key-encryption key file (--key-encryption-key) holds the key the data key is wrapped under", "err", err)
	}
	n.tend.problem = msg
}

// reloadKEKs reads the key-encryption key file again when it changed. A
// file that cannot be used keeps the keys in use.
func (n *Node) reloadKEKs() {
	if n.cfg.KEKFile == "" {
		return
	}
	st, err := stampOf(n.cfg.KEKFile)
	if err != nil || st == n.tend.kekStamp {
		return
	}
	n.tend.kekStamp = st
	keks, err := ReadKEKs(n.cfg.KEKFile)
	if err != nil {
		n.log.Warn("key-encryption key file changed but cannot be used; keeping the keys in use", "err", err)
		return
	}
	n.sealKeys.SetKEKs(keks)
	n.log.Info("key-encryption keys read again", "keys", len(keks), "wraps_under", keks[0].ID())
}

// rewrapDataKey stores the data key wrapped under this node's first
// key-encryption key when it is stored otherwise.
func (n *Node) rewrapDataKey(ctx context.Context) {
	d, err := n.sealKeys.Rewrap(n.Config().GetDataKey())
	if err != nil || d == nil {
		return
	}
	res, err := n.Apply(ctx, &pb.Command{Actor: "node:" + n.ID(), Body: &pb.Command_SetDataKey{SetDataKey: &pb.SetDataKey{DataKey: d}}})
	if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		n.log.Warn("cannot rewrap the cluster's data key; trying again", "err", err, "result", res.GetMessage())
		return
	}
	n.log.Info("the cluster's data key is now wrapped under this node's first key-encryption key", "kek_id", d.KekId)
}

// sealPlainValues seals the plain values of keys written before values
// were sealed, in batches, the smallest ids first.
func (n *Node) sealPlainValues(ctx context.Context, keys *sealing.Keys) {
	sealed := 0
	defer func() {
		if sealed > 0 {
			n.log.Info("sealed API key values written in plain", "keys", sealed)
		}
	}()
	for range maxSealBatches {
		cfg := n.Config()
		if cfg == n.tend.clean {
			return
		}
		var plain []string
		for id, k := range cfg.GetApiKeys() {
			if k.GetValue() != "" && !n.tend.skip[id] {
				plain = append(plain, id)
			}
		}
		if len(plain) == 0 {
			n.tend.clean = cfg
			return
		}
		slices.Sort(plain)
		plain = plain[:min(len(plain), sealBatch)]
		batch := make([]*pb.SealedKey, 0, len(plain))
		for _, id := range plain {
			batch = append(batch, keys.SealAPIKey(id, cfg.GetApiKeys()[id].GetValue()))
		}
		res, err := n.Apply(ctx, &pb.Command{Actor: "node:" + n.ID(), Body: &pb.Command_SealApiKeys{SealApiKeys: &pb.SealApiKeys{Keys: batch}}})
		if err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			n.log.Warn("cannot seal API key values written in plain; trying again", "err", err, "result", res.GetMessage())
			return
		}
		sealed += len(res.Ids)
		for _, w := range res.Warnings {
			n.log.Warn("an API key value stays unsealed", "problem", w)
		}
		if len(res.Ids) < len(plain) {
			// Left plain by the state machine, or sealed or deleted
			// meanwhile: not asked again until the node restarts.
			done := map[string]bool{}
			for _, id := range res.Ids {
				done[id] = true
			}
			if n.tend.skip == nil {
				n.tend.skip = map[string]bool{}
			}
			for _, id := range plain {
				if !done[id] {
					n.tend.skip[id] = true
				}
			}
		}
	}
}
