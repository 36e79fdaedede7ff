package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/admin"
	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// cliEnv is a real admin API (the state machine in memory) behind an
// httptest server, and the environment the CLI runs in: no token, no
// endpoint, a config directory of its own.
type cliEnv struct {
	t     *testing.T
	store *clustertest.MemStore[*cluster.FSM]
	url   string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	store := clustertest.NewMemStore(cluster.NewFSM())
	srv, err := admin.New(admin.Config{Store: store, Logger: slog.New(slog.DiscardHandler),
		ClusterStatus: func() any {
			return cluster.Status{NodeID: "n1", Leader: "n1", State: "Leader", AppliedIndex: 7,
				Members: []cluster.MemberStatus{{ID: "n1", Gossip: "alive", Suffrage: "voter", Role: "leader", RaftAddr: "127.0.0.1:7000"}}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	t.Setenv("TOLLGATE_TOKEN", "")
	t.Setenv("TOLLGATE_ENDPOINT", "")
	t.Setenv("TOLLGATE_CONFIG", "")
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	return &cliEnv{t: t, store: store, url: hs.URL}
}

// run runs the CLI with --endpoint set to the test server; it returns
// stdout, stderr and the command's error.
func (e *cliEnv) run(args ...string) (string, string, error) {
	e.t.Helper()
	return runCLI(append(args, "--endpoint", e.url)...)
}

// runCLI runs the CLI as it is given.
func runCLI(args ...string) (string, string, error) {
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// ok runs the CLI and fails the test on an error.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// jsonOf runs the CLI with --output json and decodes what it printed.
func (e *cliEnv) jsonOf(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("tollgate %s printed no JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs the CLI, wants an error holding each of want, and returns it.
func (e *cliEnv) fails(want []string, args ...string) {
	e.t.Helper()
	_, _, err := e.run(args...)
	if err == nil {
		e.t.Fatalf("tollgate %s succeeded", strings.Join(args, " "))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			e.t.Errorf("tollgate %s: error %q lacks %q", strings.Join(args, " "), err, w)
		}
	}
}

func TestCLIPlans(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("plans", "create", "--name", "gold", "--rate", "10", "--burst", "20", "--quota-limit", "1000", "--quota-period", "day")
	for _, want := range []string{"NAME", "gold", "10/s burst 20", "1000/DAY"} {
		if !strings.Contains(out, want) {
			t.Errorf("plans create printed no %q:\n%s", want, out)
		}
	}
	var plans []struct {
		ID, Name string
		Quota    struct{ Limit int64 }
	}
	e.jsonOf(&plans, "plans", "list")
	if len(plans) != 1 || plans[0].Name != "gold" || plans[0].Quota.Limit != 1000 {
		t.Fatalf("plans list: %+v", plans)
	}
	id := plans[0].ID
	if out := e.ok("plans", "get", id); !strings.Contains(out, id) || !strings.Contains(out, "gold") {
		t.Fatalf("plans get:\n%s", out)
	}
	if out := e.ok("plans", "update", id, "--rate", "5", "--quota-limit", "50", "--name", "silver"); !strings.Contains(out, "5/s burst 20") || !strings.Contains(out, "50/DAY") || !strings.Contains(out, "silver") {
		t.Fatalf("plans update:\n%s", out)
	}
	// A bad value is the admin API's 400, and changes nothing.
	e.fails([]string{"BadRequestException", "400", "burst"}, "plans", "update", id, "--burst", "-1")
	e.fails([]string{"BadRequestException", "quota"}, "plans", "create", "--name", "x", "--quota-limit", "5", "--quota-period", "YEAR")
	e.fails([]string{"nothing to change"}, "plans", "update", id)
	if p := e.store.Config().GetUsagePlans()[id]; p.GetThrottle().GetBurstLimit() != 20 || p.GetName() != "silver" {
		t.Fatalf("a refused update changed the plan: %v", p)
	}
	if n := len(e.store.Config().GetUsagePlans()); n != 1 {
		t.Fatalf("a refused create made a plan: %d plans", n)
	}
	if out := e.ok("plans", "delete", id); !strings.Contains(out, "deleted plan "+id) {
		t.Fatalf("plans delete: %s", out)
	}
	e.fails([]string{"NotFoundException", "404", "Invalid Usage Plan ID specified"}, "plans", "get", id)
}

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	var plan struct{ ID string }
	e.jsonOf(&plan, "plans", "create", "--name", "gold")
	var key struct {
		ID, Value, Name string
		Enabled         bool
	}
	e.jsonOf(&key, "keys", "create", "--name", "acme-1", "--customer-id", "acme", "--plan", plan.ID)
	if key.ID == "" || len(key.Value) < 20 || !key.Enabled {
		t.Fatalf("keys create: %+v", key)
	}
	if _, in := e.store.Config().GetPlanKeys()[plan.ID].GetKeys()[key.ID]; !in {
		t.Fatal("keys create --plan did not put the key in the plan")
	}
	e.ok("keys", "create", "--name", "other")
	out := e.ok("keys", "list", "--name", "acme")
	if !strings.Contains(out, key.ID) || strings.Contains(out, "other") || strings.Contains(out, key.Value) {
		t.Fatalf("keys list --name acme:\n%s", out)
	}
	if out := e.ok("keys", "get", key.ID, "--include-value"); !strings.Contains(out, key.Value) {
		t.Fatalf("keys get --include-value shows no value:\n%s", out)
	}
	if out := e.ok("keys", "update", key.ID, "--enabled=false"); !strings.Contains(out, "false") {
		t.Fatalf("keys update:\n%s", out)
	}
	if e.store.Config().GetApiKeys()[key.ID].GetEnabled() {
		t.Fatal("keys update --enabled=false left the key enabled")
	}
	e.fails([]string{"BadRequestException", "API Key value should be at least 20 characters"}, "keys", "create", "--name", "short", "--value", "abc")

	csv := filepath.Join(t.TempDir(), "keys.csv")
	good := strings.Repeat("a", 30)
	if err := os.WriteFile(csv, []byte("Name,Key,Enabled\nbulk-1,"+good+",true\nbulk-2,tooshort,true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := e.run("keys", "import", csv)
	if err != nil {
		t.Fatalf("keys import: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "imported 1 keys, 1 warnings") || !strings.Contains(errOut, "line 3") {
		t.Fatalf("keys import printed:\n%s\nstderr:\n%s", out, errOut)
	}
	before := len(e.store.Config().GetApiKeys())
	e.fails([]string{"BadRequestException", "line 3"}, "keys", "import", csv, "--fail-on-warnings")
	if after := len(e.store.Config().GetApiKeys()); after != before {
		t.Fatalf("a refused import changed the keys: %d, then %d", before, after)
	}
	e.fails([]string{"no such file"}, "keys", "import", filepath.Join(t.TempDir(), "missing.csv"))
	if out := e.ok("keys", "delete", key.ID); !strings.Contains(out, key.ID) {
		t.Fatalf("keys delete: %s", out)
	}
	if e.store.Config().GetApiKeys()[key.ID] != nil {
		t.Fatal("keys delete left the key")
	}
}

func TestCLIUsage(t *testing.T) {
	e := newCLIEnv(t)
	var plan struct{ ID string }
	e.jsonOf(&plan, "plans", "create", "--name", "gold", "--quota-limit", "100", "--quota-period", "MONTH")
	var key struct{ ID string }
	e.jsonOf(&key, "keys", "create", "--name", "acme", "--plan", plan.ID)
	today := time.Now().UTC()
	res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_Ledger{Ledger: &pb.LedgerBatch{
		NodeId: "n1", Reports: []*pb.UsageReport{{PlanId: plan.ID, KeyId: key.ID, Day: limiter.DayOf(today.Unix()), Count: 7}},
	}}})
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("report: %v %v", err, res)
	}
	day := today.Format(time.DateOnly)
	out := e.ok("usage", "--plan", plan.ID, "--from", day, "--to", day)
	if !strings.Contains(out, key.ID) || !strings.Contains(out, "acme") || !strings.Contains(out, day+"  7     93") {
		t.Fatalf("usage:\n%s", out)
	}
	csvOut := e.ok("usage", "--plan", plan.ID, "--from", day, "--csv")
	if !strings.HasPrefix(csvOut, "keyId,name,customerId,date,used,remaining\n") || !strings.Contains(csvOut, key.ID+",acme,,"+day+",7,93") {
		t.Fatalf("usage --csv:\n%s", csvOut)
	}
	var u struct {
		Values map[string][][2]int64
	}
	e.jsonOf(&u, "usage", "--plan", plan.ID)
	if v := u.Values[key.ID]; len(v) != 1 || v[0] != [2]int64{7, 93} {
		t.Fatalf("usage --output json: %+v", u)
	}
	if out := e.ok("usage", "extend", "--plan", plan.ID, "--key", key.ID, "--by", "50"); !strings.Contains(out, "143 remaining, was 93") {
		t.Fatalf("usage extend: %s", out)
	}
	e.jsonOf(&u, "usage", "--plan", plan.ID, "--key", key.ID)
	if v := u.Values[key.ID]; len(v) != 1 || v[0][1] != 143 {
		t.Fatalf("after extend: %+v", u)
	}
	e.fails([]string{"cannot go below 0"}, "usage", "extend", "--plan", plan.ID, "--key", key.ID, "--by", "-1000")
	e.fails([]string{"not in usage plan"}, "usage", "extend", "--plan", plan.ID, "--key", "nokey", "--by", "1")
	e.fails([]string{"NotFoundException"}, "usage", "--plan", "noplan")
	e.fails([]string{"BadRequestException"}, "usage", "--plan", plan.ID, "--from", "yesterday")
	e.fails([]string{"--plan is required"}, "usage")
}

func TestCLIStages(t *testing.T) {
	e := newCLIEnv(t)
	res, err := e.store.Apply(t.Context(), &pb.Command{Body: &pb.Command_CreateRestApi{CreateRestApi: &pb.CreateRestApi{Api: &pb.RestApi{Id: "api1", Name: "pets"}}}})
	if err != nil || res.GetCode() != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("create API: %v %v", err, res)
	}
	if out := e.ok("stages", "deploy", "--api", "api1", "prod", "--var", "url=http://127.0.0.1:3000"); !strings.Contains(out, "deployed api1 to stage prod") {
		t.Fatalf("stages deploy: %s", out)
	}
	out := e.ok("stages", "list", "--api", "api1")
	if !strings.Contains(out, "prod") || !strings.Contains(out, "url=http://127.0.0.1:3000") {
		t.Fatalf("stages list:\n%s", out)
	}
	out = e.ok("stages", "update", "--api", "api1", "prod", "--var", "url=http://127.0.0.1:4000", "--key-required=false")
	if !strings.Contains(out, "url=http://127.0.0.1:4000") || !strings.Contains(out, "false") {
		t.Fatalf("stages update:\n%s", out)
	}
	e.fails([]string{"BadRequestException"}, "stages", "update", "--api", "api1", "prod", "--var", "url=notaurl")
	if got := e.store.Config().GetStages()["api1/prod"].GetVariables()["url"]; got != "http://127.0.0.1:4000" {
		t.Fatalf("a refused update changed the stage: url %q", got)
	}
	var st struct{ StageName string }
	e.jsonOf(&st, "stages", "get", "--api", "api1", "prod")
	if st.StageName != "prod" {
		t.Fatalf("stages get: %+v", st)
	}
	e.fails([]string{"--api is required"}, "stages", "list")
	e.ok("stages", "delete", "--api", "api1", "prod")
	e.fails([]string{"NotFoundException"}, "stages", "get", "--api", "api1", "prod")
}

func TestCLIClusterStatus(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("cluster", "status")
	if !strings.Contains(out, "leader n1, applied index 7") || !strings.Contains(out, "alive") || !strings.Contains(out, "voter") {
		t.Fatalf("cluster status:\n%s", out)
	}
	var st struct{ Leader string }
	e.jsonOf(&st, "cluster", "status")
	if st.Leader != "n1" {
		t.Fatalf("cluster status --output json: %+v", st)
	}
	e.fails([]string{"--output \"yaml\""}, "cluster", "status", "--output", "yaml")
}

// TestCLIEndpointAndCredentials: the endpoint and the token come from the
// flag, then the environment, then the config file; a config file others
// can read is warned about; without a credential the admin API's refusal
// is the error.
func TestCLIEndpointAndCredentials(t *testing.T) {
	e := newCLIEnv(t)
	var cred struct{ Token string }
	resp, err := http.Post(e.url+"/tollgate/credentials", "application/json", strings.NewReader(`{"name":"ops","role":"admin"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&cred); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create credential: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	e.fails([]string{"MissingAuthenticationTokenException", "403"}, "plans", "list")
	if _, _, err := e.run("plans", "list", "--token", cred.Token); err != nil {
		t.Fatalf("--token: %v", err)
	}
	t.Setenv("TOLLGATE_TOKEN", cred.Token)
	if _, _, err := e.run("plans", "list"); err != nil {
		t.Fatalf("TOLLGATE_TOKEN: %v", err)
	}
	e.fails([]string{"UnrecognizedClientException"}, "plans", "list", "--token", "TGAKAAAAAAAAAAAAAAAA."+strings.Repeat("x", 40))

	// The config file: endpoint and token, under the user's config dir.
	t.Setenv("TOLLGATE_TOKEN", "")
	cfgDir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "tollgate")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfgDir, "cli.yaml")
	if err := os.WriteFile(file, []byte("endpoint: "+e.url+"\ntoken: "+cred.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI("plans", "list")
	if err != nil || strings.Contains(errOut, "warning") || !strings.Contains(out, "ID") {
		t.Fatalf("config file: %v\n%s\n%s", err, out, errOut)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, _ := runCLI("plans", "list"); !strings.Contains(errOut, "make it 0600") {
		t.Fatalf("a config file others can read gave no warning: %q", errOut)
	}
	// The environment beats the file, the flag beats the environment.
	t.Setenv("TOLLGATE_ENDPOINT", "http://127.0.0.1:1")
	if _, _, err := runCLI("plans", "list"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("TOLLGATE_ENDPOINT was not used: %v", err)
	}
	if _, _, err := runCLI("plans", "list", "--endpoint", e.url); err != nil {
		t.Fatalf("--endpoint over TOLLGATE_ENDPOINT: %v", err)
	}
	// TOLLGATE_CONFIG names the file; a missing one it names is an error,
	// and so is a file with an unknown field.
	t.Setenv("TOLLGATE_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	if _, _, err := runCLI("plans", "list"); err == nil || !strings.Contains(err.Error(), "config file") {
		t.Fatalf("a missing TOLLGATE_CONFIG file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("endpont: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGATE_CONFIG", bad)
	if _, _, err := runCLI("plans", "list"); err == nil || !strings.Contains(err.Error(), "endpont") {
		t.Fatalf("a config file with an unknown field: %v", err)
	}
	t.Setenv("TOLLGATE_CONFIG", "")
	if _, _, err := runCLI("plans", "list", "--endpoint", "127.0.0.1:9090"); err == nil || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("an endpoint without a scheme: %v", err)
	}
}
