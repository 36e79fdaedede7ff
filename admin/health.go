package admin

import "net/http"

// ungated are the routes served while the node has not caught up: they
// describe the node itself, not the cluster's state.
var ungated = map[string]bool{"GET /healthz": true, "GET /metrics": true, "GET /cluster": true}

// isReady tells whether the node serves its state (Config.Ready).
func (s *Server) isReady() bool { return s.ready == nil || s.ready() }

// health is the body of GET /healthz.
type health struct {
	// Status is "ok", or "catching up" while the node has not applied what
	// it must before it serves.
	Status string `json:"status"`
	// CaughtUp: the node serves its state.
	CaughtUp bool `json:"caughtUp"`
	// AppliedIndex and TargetIndex: the last Raft index applied here, and
	// the one to reach (with Config.Progress only).
	AppliedIndex *uint64 `json:"appliedIndex,omitempty"`
	TargetIndex  *uint64 `json:"targetIndex,omitempty"`
}

// healthz answers 200 {"status":"ok",...} when the node serves its state,
// else 503 {"status":"catching up",...} with Retry-After.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) *apiError {
	h := health{Status: "ok", CaughtUp: s.isReady()}
	if s.progress != nil {
		applied, target := s.progress()
		h.AppliedIndex, h.TargetIndex = &applied, &target
	}
	status := http.StatusOK
	if !h.CaughtUp {
		h.Status, status = "catching up", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, h)
	return nil
}
