package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/tollgate/tollgate/limiter"
)

// Shares hands out this node's shares of the cluster-wide throttles (the
// account's, the stages' method settings, each key's plan throttle and
// each key's per-method overrides).
type Shares interface {
	// Share returns the share of throttle id: the same pointer for the
	// same id. The request path counts its requests there (Attempt).
	Share(id string) *limiter.Share
	// Default returns the share in force for every throttle whose own
	// share is cold (never answered): a new key's first request runs on
	// it without waiting. Cold itself while the cluster has given none.
	Default() *limiter.Share
	// Wait returns once the share of id holds an answer (its own or the
	// default), or the cluster could not give one, or ctx ends. It is
	// called only while both are cold.
	Wait(ctx context.Context, id string)
}

// Throttle ids: the name of each cluster-wide throttle in Shares.
func accountShareID() string               { return "account" }
func stageShareID(settingID string) string { return "stage\x00" + settingID }
func keyShareID(keyStateID string) string  { return "key\x00" + keyStateID }
func methodShareID(keyStateID, overrideID string) string {
	return "method\x00" + keyStateID + "\x00" + overrideID
}

// wholeShares is the default Shares: a cluster of one holds every
// throttle whole.
type wholeShares struct {
	mu  sync.Mutex
	m   map[string]*limiter.Share
	def limiter.Share
}

func (w *wholeShares) Default() *limiter.Share {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, cold := limiter.UnpackShare(w.def.Load()); cold {
		w.def.Store(1)
	}
	return &w.def
}

func (w *wholeShares) Share(id string) *limiter.Share {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]*limiter.Share{}
	}
	s := w.m[id]
	if s == nil {
		s = &limiter.Share{}
		s.Store(1)
		w.m[id] = s
	}
	return s
}

func (w *wholeShares) Wait(context.Context, string) {}

// limit is a cluster-wide throttle as one configuration sets it. Each
// table makes its own, so a pointer comparison tells a configuration
// change.
type limit struct {
	rate  float64
	burst int64
}

// sharedBucket is one cluster-wide throttle on this node: a bucket holding the
// node's share of the limit, and the share. It outlives tables.
type sharedBucket struct {
	id      string
	bucket  *limiter.Bucket
	share   *limiter.Share
	mu      sync.Mutex // serialises limit changes
	applied atomic.Pointer[appliedLimit]
}

// appliedLimit is what the bucket holds: a limit and the packed share
// (limiter.Share.Load) it was scaled by.
type appliedLimit struct {
	lim   *limit
	share uint64
}

func newThrottle(id string, lim *limit, shares Shares) *sharedBucket {
	return &sharedBucket{id: id, bucket: limiter.NewBucket(lim.rate, lim.burst), share: shares.Share(id)}
}

// carryThrottle returns old's throttle id, or a new one (a full bucket).
func carryThrottle(old map[string]*sharedBucket, id string, lim *limit, shares Shares) *sharedBucket {
	if th := old[id]; th != nil {
		return th
	}
	return newThrottle(id, lim, shares)
}

// ready counts the request as the throttle's demand and makes the bucket
// hold the node's share of lim: one atomic load of the share and one of
// what the bucket holds, unless either changed. A share never answered
// (cold) runs on the node's default share; when that is cold too, it is
// waited for (see Shares.Wait), and the request is refused at this level
// (false) when none came.
func (th *sharedBucket) ready(p *Proxy, ex *exchange, r *http.Request, lim *limit) bool {
	th.share.Attempt()
	v := th.inForce(p)
	if a := th.applied.Load(); a != nil && a.lim == lim && a.share == v {
		return true
	}
	if _, cold := limiter.UnpackShare(v); cold {
		w := quotaWait{parent: r.Context(), d: p.quotaWait}
		p.shares.Wait(&w, th.id)
		w.release()
		if _, cold := limiter.UnpackShare(th.inForce(p)); cold {
			return false
		}
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	v = th.inForce(p)
	sh, _ := limiter.UnpackShare(v)
	rate, burst := planLimit(lim.rate, lim.burst, sh)
	setLimit(th.bucket, rate, burst)
	th.applied.Store(&appliedLimit{lim: lim, share: v})
	return true
}

// inForce is the packed share the bucket runs on: its own, or the
// node's default while its own is cold.
func (th *sharedBucket) inForce(p *Proxy) uint64 {
	v := th.share.Load()
	if _, cold := limiter.UnpackShare(v); cold {
		// A default of nothing (the leader had nothing free for this
		// node) is no better than none: the throttle waits for its own.
		if d := p.shares.Default().Load(); limiter.ShareHolds(d) {
			return d
		}
	}
	return v
}
