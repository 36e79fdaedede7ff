package admin

import "net/http"

// ungated are the routes served while the node has not caught up: they
// describe the node itself, not the cluster's state.
var ungated = map[string]bool{"GET /healthz": true, "GET /metrics": true, "GET /cluster": true}

// isReady tells whether the node serves its state (Config.Ready).
func (s *Server) isReady() bool { return s.ready == nil || s.ready() }

// problemNow is why the node cannot serve besides catching up
// (Config.Problem), or nil.
func (s *Server) problemNow() error {
	if s.problem == nil {
		return nil
	}
	return s.problem()
}

// health is the body of GET /healthz.
type health struct {
	// Status is "ok", "catching up" while the node has not applied what
	// it must before it serves, or "not ready" for Reason.
	Status string `json:"status"`
	// Reason says why the node is not ready besides catching up
	// (Config.Problem).
	Reason string `json:"reason,omitempty"`
	// CaughtUp: the node serves its state.
	CaughtUp bool `json:"caughtUp"`
	// AppliedIndex and TargetIndex: the last Raft index applied here, and
	// the one to reach (with Config.Progress only).
	AppliedIndex *uint64 `json:"appliedIndex,omitempty"`
	TargetIndex  *uint64 `json:"targetIndex,omitempty"`
}

// healthz answers 200 {"status":"ok",...} when the node serves its state,
// else 503 {"status":"catching up",...} or {"status":"not ready",
// "reason":...} with Retry-After.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) *apiError {
	h := health{Status: "ok", CaughtUp: s.isReady()}
	if s.progress != nil {
		applied, target := s.progress()
		h.AppliedIndex, h.TargetIndex = &applied, &target
	}
	status := http.StatusOK
	if err := s.problemNow(); err != nil {
		h.Status, h.Reason, status = "not ready", err.Error(), http.StatusServiceUnavailable
	}
	if !h.CaughtUp {
		h.Status, status = "catching up", http.StatusServiceUnavailable
	}
	if status != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, h)
	return nil
}
