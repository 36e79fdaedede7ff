package echo

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"sync"
)

// CountsPath is the route that returns the counts.
const CountsPath = "/_upstream/requests"

// maxKeys bounds each table of Counts: requests past it with a new path,
// query or peer are counted under Other.
const maxKeys = 10_000

// The headers a Tollgate node sets on a request it forwards: the id of the
// API key that let it in, and the node's id (package proxy).
const (
	HeaderKeyID = "X-Tollgate-Key-Id"
	HeaderNode  = "X-Tollgate-Node"
)

// Other is the key that counts what came after a table was full.
const Other = "(other)"

// Reply is the body of an echoed request.
type Reply struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
	// RequestID is the request's X-Amzn-Requestid, else its X-Request-Id.
	RequestID    string `json:"requestId"`
	ForwardedFor string `json:"forwardedFor"`
	// Peer is the address (without port) the request came from.
	Peer string `json:"peer"`
	// KeyID and Node are the request's X-Tollgate-Key-Id and
	// X-Tollgate-Node: the API key's id and the node that forwarded it.
	KeyID string `json:"keyId"`
	Node  string `json:"node"`
}

// Counts are the requests received since the server started.
type Counts struct {
	Total   int64            `json:"total"`
	ByPath  map[string]int64 `json:"byPath"`
	ByQuery map[string]int64 `json:"byQuery"` // the raw query, "" for none
	ByPeer  map[string]int64 `json:"byPeer"`
	// ByKey counts by API key id, ByNode by forwarding node ("" for a
	// request without the header).
	ByKey  map[string]int64 `json:"byKey"`
	ByNode map[string]int64 `json:"byNode"`
}

// Server is the echo handler. Its zero value is not ready: use New.
type Server struct {
	mu     sync.Mutex
	counts Counts
}

// New returns a Server with nothing counted.
func New() *Server {
	return &Server{counts: Counts{ByPath: map[string]int64{}, ByQuery: map[string]int64{}, ByPeer: map[string]int64{},
		ByKey: map[string]int64{}, ByNode: map[string]int64{}}}
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == CountsPath && r.Method == http.MethodGet {
		s.writeCounts(w)
		return
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	rep := Reply{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		RequestID:    r.Header.Get("X-Amzn-Requestid"),
		ForwardedFor: r.Header.Get("X-Forwarded-For"),
		Peer:         peer,
		KeyID:        r.Header.Get(HeaderKeyID),
		Node:         r.Header.Get(HeaderNode),
	}
	if rep.RequestID == "" {
		rep.RequestID = r.Header.Get("X-Request-Id")
	}
	s.record(rep)
	writeJSON(w, rep)
}

func (s *Server) record(rep Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Total++
	add(s.counts.ByPath, rep.Path)
	add(s.counts.ByQuery, rep.Query)
	add(s.counts.ByPeer, rep.Peer)
	add(s.counts.ByKey, rep.KeyID)
	add(s.counts.ByNode, rep.Node)
}

func add(m map[string]int64, k string) {
	if _, ok := m[k]; !ok && len(m) >= maxKeys {
		k = Other
	}
	m[k]++
}

func (s *Server) writeCounts(w http.ResponseWriter) {
	s.mu.Lock()
	c := Counts{Total: s.counts.Total, ByPath: maps.Clone(s.counts.ByPath), ByQuery: maps.Clone(s.counts.ByQuery),
		ByPeer: maps.Clone(s.counts.ByPeer), ByKey: maps.Clone(s.counts.ByKey), ByNode: maps.Clone(s.counts.ByNode)}
	s.mu.Unlock()
	writeJSON(w, c)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
