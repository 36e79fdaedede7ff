package sealing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	pb "github.com/tollgate/tollgate/proto"
)

// ErrNoDataKey is returned while the cluster has no data key.
var ErrNoDataKey = errors.New("the cluster has no data key yet")

// Keyring is a node's key-encryption keys and the keys derived from the
// cluster's data key, cached. Safe for concurrent use.
type Keyring struct {
	keks  atomic.Pointer[[]*KEK] // the first one wraps
	cache atomic.Pointer[derived]
}

type derived struct {
	check []byte
	keys  *Keys
}

// NewKeyring returns a keyring over these key-encryption keys (none: the
// data key is stored unwrapped).
func NewKeyring(keks ...*KEK) *Keyring {
	r := &Keyring{}
	r.SetKEKs(keks)
	return r
}

// SetKEKs replaces the key-encryption keys (the key file was read again).
// The derived keys stay cached: the data key they come from is the same.
func (r *Keyring) SetKEKs(keks []*KEK) { r.keks.Store(&keks) }

// Wrapping tells whether this keyring wraps data keys.
func (r *Keyring) Wrapping() bool { return len(*r.keks.Load()) > 0 }

// Wrap stores a data key under the first key-encryption key, or plain
// without one.
func (r *Keyring) Wrap(dk []byte) *pb.DataKey {
	keks := *r.keks.Load()
	if len(keks) == 0 {
		return &pb.DataKey{Wrapped: dk, Check: Check(dk)}
	}
	return &pb.DataKey{Wrapped: keks[0].Wrap(dk), KekId: keks[0].ID(), Check: Check(dk)}
}

// Rewrap returns the stored data key wrapped under this keyring's first
// key-encryption key, when it is stored otherwise: unwrapped, or under an
// older key. It returns nil when there is nothing to do (no data key, no
// key-encryption key, or already wrapped under the first one).
func (r *Keyring) Rewrap(d *pb.DataKey) (*pb.DataKey, error) {
	keks := *r.keks.Load()
	if d == nil || len(keks) == 0 || d.GetKekId() == keks[0].ID() {
		return nil, nil
	}
	raw, err := r.Unwrap(d)
	if err != nil {
		return nil, err
	}
	return r.Wrap(raw), nil
}

// Unwrap returns the raw data key, checked against its check value.
func (r *Keyring) Unwrap(d *pb.DataKey) ([]byte, error) {
	raw := d.GetWrapped()
	if id := d.GetKekId(); id != "" {
		var kek *KEK
		for _, k := range *r.keks.Load() {
			if k.ID() == id {
				kek = k
			}
		}
		if kek == nil {
			return nil, fmt.Errorf("the cluster's data key is wrapped under key-encryption key %s, which this node's key-encryption key file does not hold", id)
		}
		var err error
		if raw, err = kek.Unwrap(d.Wrapped); err != nil {
			return nil, fmt.Errorf("unwrap the cluster's data key: %w", err)
		}
	}
	if len(raw) != KeySize || !Equal(Check(raw), d.GetCheck()) {
		return nil, errors.New("the cluster's data key does not match its check value")
	}
	return raw, nil
}

// Keys returns the keys of a stored data key: ErrNoDataKey for none, or
// why this node cannot unwrap it.
func (r *Keyring) Keys(d *pb.DataKey) (*Keys, error) {
	if d == nil {
		return nil, ErrNoDataKey
	}
	if c := r.cache.Load(); c != nil && Equal(c.check, d.Check) {
		return c.keys, nil
	}
	raw, err := r.Unwrap(d)
	if err != nil {
		return nil, err
	}
	keys, err := Derive(raw)
	if err != nil {
		return nil, err
	}
	r.cache.Store(&derived{check: d.Check, keys: keys})
	return keys, nil
}

// Store is where a keyring finds and stores the cluster's data key.
type Store interface {
	Config() *pb.Config
	Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error)
}

// Ensure returns the keys of the cluster's data key, proposing a fresh
// one first when the cluster has none. The first data key applied wins,
// so concurrent callers on different nodes agree.
func (r *Keyring) Ensure(ctx context.Context, s Store, actor string) (*Keys, error) {
	if k, err := r.Keys(s.Config().GetDataKey()); !errors.Is(err, ErrNoDataKey) {
		return k, err
	}
	cmd := &pb.Command{Actor: actor, Body: &pb.Command_SetDataKey{SetDataKey: &pb.SetDataKey{DataKey: r.Wrap(NewDataKey())}}}
	res, err := s.Apply(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("store a data key: %w", err)
	}
	if res.Code != pb.ErrorCode_ERROR_CODE_NONE && res.Code != pb.ErrorCode_ERROR_CODE_CONFLICT {
		return nil, fmt.Errorf("store a data key: %s", res.Message)
	}
	return r.Keys(s.Config().GetDataKey())
}
