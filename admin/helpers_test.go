package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// testNow is the default time of a test environment: a Sunday.
var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// env is an admin server on the real state machine (in memory) with a
// clock the test moves.
type env struct {
	t     *testing.T
	store *clustertest.MemStore[*cluster.FSM]
	srv   *Server
	reg   *prometheus.Registry
	mu    sync.Mutex
	now   time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWithStore(t, nil)
}

// newEnvWithStore builds an env; wrap, when set, puts a Store in front of
// the in-memory store.
func newEnvWithStore(t *testing.T, wrap func(Store) Store) *env {
	t.Helper()
	e := &env{t: t, store: clustertest.NewMemStore(cluster.NewFSM()), reg: prometheus.NewRegistry(), now: testNow}
	e.store.SetClock(e.clock)
	var st Store = e.store
	if wrap != nil {
		st = wrap(st)
	}
	srv, err := New(Config{Store: st, Registry: e.reg, Now: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	return e
}

// value opens a stored key's value as the API does.
func (e *env) value(k *pb.ApiKey) string {
	e.t.Helper()
	keys, err := e.store.Keys(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := keys.OpenAPIKey(k)
	if err != nil {
		e.t.Fatalf("open the value of key %s: %v", k.GetId(), err)
	}
	return v
}

// sealedKeyCmd creates a key as the API does: its value sealed.
func (e *env) sealedKeyCmd(id, value, name string) *pb.Command {
	e.t.Helper()
	keys, err := e.store.Keys(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	s := keys.SealAPIKey(id, value)
	return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
		Key: &pb.ApiKey{Id: id, ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed, Name: name, Enabled: true}, Create: true}}}
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) setNow(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

// json decodes the body as an object.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// localRequest is a request as a local client sends it: to 127.0.0.1
// (httptest.NewRequest names example.com, a Host the API refuses).
func localRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Host = "127.0.0.1:9090"
	return req
}

// do sends a request. body is sent as is when it is a string or []byte,
// else as JSON. Writes carry Content-Type application/json (text/csv for
// the key import), as the SDKs send them; hdr is pairs of header names and
// values, set after (an empty value removes the header).
func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req := localRequest(method, path, rd)
	switch {
	case strings.Contains(path, "mode=import"):
		req.Header.Set("Content-Type", "text/csv")
	case body != nil || method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut:
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	res := resp{code: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if res.header.Get("x-amzn-RequestId") == "" {
		e.t.Errorf("%s %s: no x-amzn-RequestId", method, path)
	}
	return res
}

// must sends a request, checks the status code and decodes the answer.
func (e *env) must(method, path string, body any, code int) map[string]any {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.code != code {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.code, code, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// wantError checks an error answer: status, x-amzn-ErrorType and message
// (exact unless it ends with "*", then a prefix).
func wantError(t *testing.T, r resp, code int, errType, msg string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	if got := r.header.Get("x-amzn-ErrorType"); got != errType {
		t.Errorf("x-amzn-ErrorType %q, want %q", got, errType)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body: %v: %s", err, r.body)
	}
	if p, ok := strings.CutSuffix(msg, "*"); ok {
		if !strings.HasPrefix(body.Message, p) {
			t.Errorf("message %q, want prefix %q", body.Message, p)
		}
	} else if msg != "" && body.Message != msg {
		t.Errorf("message %q, want %q", body.Message, msg)
	}
}

// Fixtures.

func (e *env) api(name string) string {
	e.t.Helper()
	return e.must("POST", "/restapis", map[string]any{"name": name}, 201)["id"].(string)
}

// stage creates a deployment with a stage and returns the deployment id.
func (e *env) stage(apiID, stage string) string {
	e.t.Helper()
	return e.must("POST", "/restapis/"+apiID+"/deployments", map[string]any{
		"stageName": stage, "variables": map[string]string{"url": "http://127.0.0.1:9/"},
	}, 201)["id"].(string)
}

func (e *env) plan(body map[string]any) string {
	e.t.Helper()
	return e.must("POST", "/usageplans", body, 201)["id"].(string)
}

func (e *env) key(body map[string]any) string {
	e.t.Helper()
	return e.must("POST", "/apikeys", body, 201)["id"].(string)
}

func (e *env) attach(planID, keyID string) {
	e.t.Helper()
	e.must("POST", "/usageplans/"+planID+"/keys", map[string]any{"keyId": keyID, "keyType": "API_KEY"}, 201)
}

func patch(ops ...[3]string) map[string]any {
	list := make([]map[string]string, 0, len(ops))
	for _, o := range ops {
		list = append(list, map[string]string{"op": o[0], "path": o[1], "value": o[2]})
	}
	return map[string]any{"patchOperations": list}
}

func op(o, path, value string) [3]string { return [3]string{o, path, value} }

// report records usage in the ledger as a node would.
func (e *env) report(planID, keyID string, day time.Time, n int64) {
	e.t.Helper()
	res, err := e.store.Apply(e.t.Context(), &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{
		NodeId: "n1", Reports: []*pb.UsageReport{{PlanId: planID, KeyId: keyID, Day: limiter.DayOf(day.Unix()), Count: n}},
	}}})
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		e.t.Fatalf("ledger: %v %v", err, res)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
