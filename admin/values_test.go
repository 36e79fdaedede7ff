package admin

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// TestKeyValuesSealedAndShown: the API writes values sealed (the stored
// configuration holds no value) and shows them where the original does.
func TestKeyValuesSealedAndShown(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	plan := e.plan(map[string]any{"name": "gold", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	const v1, v2 = "createdValue0123456789", "importedValue0123456789"
	id1 := e.key(map[string]any{"name": "one", "value": v1, "enabled": true})
	e.attach(plan, id1)
	imp := e.do("POST", "/apikeys?mode=import&format=csv", "name,key,usageplanids\ntwo,"+v2+","+plan+"\n", "Content-Type", "text/csv")
	if imp.code != 201 {
		t.Fatalf("import: %d %s", imp.code, imp.body)
	}
	id2 := imp.json(t)["ids"].([]any)[0].(string)

	stored, err := proto.Marshal(e.store.Config())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(v1)) || bytes.Contains(stored, []byte(v2)) {
		t.Fatal("the stored configuration holds a key value")
	}
	for id, v := range map[string]string{id1: v1, id2: v2} {
		if got := e.must("GET", "/apikeys/"+id+"?includeValue=true", nil, 200)["value"]; got != v {
			t.Errorf("GetApiKey %s includeValue: %v, want %s", id, got, v)
		}
		if got := e.must("GET", "/apikeys/"+id, nil, 200)["value"]; got != nil {
			t.Errorf("GetApiKey %s without includeValue shows %v", id, got)
		}
		if got := e.must("GET", "/usageplans/"+plan+"/keys/"+id, nil, 200)["value"]; got != v {
			t.Errorf("GetUsagePlanKey %s: %v, want %s", id, got, v)
		}
	}
	list := e.must("GET", "/apikeys?includeValues=true", nil, 200)["item"].([]any)
	pkeys := e.must("GET", "/usageplans/"+plan+"/keys", nil, 200)["item"].([]any)
	for _, items := range [][]any{list, pkeys} {
		seen := map[string]bool{}
		for _, it := range items {
			seen[it.(map[string]any)["value"].(string)] = true
		}
		if !seen[v1] || !seen[v2] || len(items) != 2 {
			t.Errorf("listing %v lacks a value", items)
		}
	}
	// The values stay unique.
	wantError(t, e.do("POST", "/apikeys", map[string]any{"value": v2}), 409, "ConflictException", "API Key already exists")
	again := e.do("POST", "/apikeys?mode=import&format=csv", "name,key\nrenamed,"+v1+"\n", "Content-Type", "text/csv")
	if again.code != 201 || again.json(t)["ids"].([]any)[0] != id1 {
		t.Fatalf("import of a known value: %d %s, want key %s overwritten", again.code, again.body, id1)
	}
}

// TestKeyValuesWrittenInPlain: keys written before values were sealed
// keep their plain value until the leader seals them; the API still
// refuses their values to a create, and an import of such a value
// overwrites the key.
func TestKeyValuesWrittenInPlain(t *testing.T) {
	e := newEnv(t)
	const v1, v2 = "plainValueOfAnOldKey01", "plainValueOfAnOldKey02"
	for id, v := range map[string]string{"old1": v1, "old2": v2} {
		if res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
			Key: &pb.ApiKey{Id: id, Value: v, Name: id, Enabled: true}, Create: true}}}); err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			t.Fatalf("old key: %v %v", err, res)
		}
	}
	if got := e.must("GET", "/apikeys/old1?includeValue=true", nil, 200)["value"]; got != v1 {
		t.Fatalf("a plain value shows as %v", got)
	}
	wantError(t, e.do("POST", "/apikeys", map[string]any{"value": v1}), 409, "ConflictException", "API Key already exists")
	r := e.do("POST", "/apikeys?mode=import&format=csv", "name,key,enabled\nrenamed,"+v2+",false\n", "Content-Type", "text/csv")
	if r.code != 201 || r.json(t)["ids"].([]any)[0] != "old2" {
		t.Fatalf("import over an old key: %d %s", r.code, r.body)
	}
	k := e.store.Config().GetApiKeys()["old2"]
	if k.GetValue() != "" || k.GetName() != "renamed" || k.GetEnabled() || e.value(k) != v2 || len(e.store.Config().GetApiKeys()) != 2 {
		t.Fatalf("the old key after the import: %v", k)
	}
}

// TestKeyValueThatDoesNotOpen: a sealed value that does not open under the
// cluster's data key is an internal failure naming the key, not a panic.
func TestKeyValueThatDoesNotOpen(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.Keys(t.Context()); err != nil {
		t.Fatal(err)
	}
	other, _ := sealing.Derive(sealing.NewDataKey())
	s := other.SealAPIKey("bad", "valueUnderAnotherKey0")
	if res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{
		Key: &pb.ApiKey{Id: "bad", ValueLookup: s.ValueLookup, ValueSealed: s.ValueSealed}, Create: true}}}); err != nil || res.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("key: %v %v", err, res)
	}
	wantError(t, e.do("GET", "/apikeys/bad?includeValue=true", nil), 500, "InternalFailure",
		"The value of API Key bad cannot be shown: API key bad: sealed value does not open under this key")
	wantError(t, e.do("GET", "/apikeys?includeValues=true", nil), 500, "InternalFailure", "")
	if r := e.do("GET", "/apikeys/bad", nil); r.code != 200 {
		t.Fatalf("without its value the key shows: %d %s", r.code, r.body)
	}
}

// TestProblemMakesNodeNotReady: a node that cannot unwrap the data key
// says so on /healthz and answers 503 elsewhere.
func TestProblemMakesNodeNotReady(t *testing.T) {
	e := newEnv(t)
	problem := errors.New("the cluster's data key is wrapped under key-encryption key 0123456789abcdef, which this node's key-encryption key file does not hold")
	srv, err := New(Config{Store: e.store, Logger: slog.New(slog.DiscardHandler), Problem: func() error { return problem }})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	r := e.do("GET", "/healthz", nil)
	h := r.json(t)
	if r.code != 503 || h["status"] != "not ready" || h["reason"] != problem.Error() || r.header.Get("Retry-After") == "" {
		t.Fatalf("healthz: %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", "/apikeys", nil), 503, "ServiceUnavailableException", "This node cannot serve now: "+problem.Error()+"; ask another node")
}
