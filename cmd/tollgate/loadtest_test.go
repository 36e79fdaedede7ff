package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/loadtest/loadtesttest"

	"github.com/tollgate/tollgate/loadtest"
)

// TestLoadtestCommand runs the subcommand as a user would, with a plan read
// from a fake admin API, and reads its JSON and its table.
func TestLoadtestCommand(t *testing.T) {
	var hits atomic.Int64
	gw := loadtesttest.FakeGateway(t, &hits)
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/usageplans/p1" {
			http.Error(w, `{"message":"Invalid Usage Plan ID specified"}`, 404)
			return
		}
		w.Write([]byte(`{"id":"p1","name":"gold","quota":{"limit":40,"period":"DAY","offset":0}}`))
	}))
	t.Cleanup(admin.Close)

	run := func(args ...string) (string, error) {
		cmd := loadtestCmd()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	args := []string{"--targets", gw.URL + "," + gw.URL, "--path", "/a/prod/x", "--key", "ok,ok,nobody", "--requests", "150",
		"--admin", admin.URL, "--plan", "p1"}
	out, err := run(append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadtest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, out)
	}
	// "ok" twice and "nobody" once: 100 admitted, 50 refused; "nobody" is
	// not in the plan, so the plan's figures count one key.
	if rep.Total.OK != 100 || rep.Total.Forbidden != 50 || len(rep.Targets) != 2 || rep.Targets[0].Sent != 75 || rep.Plan == nil ||
		rep.Keys != 2 || rep.Plan.Keys != 1 || *rep.Plan.QuotaAllows != 40 || rep.Plan.Expected != 40 || rep.Plan.ErrorPct != 150 {
		t.Fatalf("report %+v plan %+v", rep, rep.Plan)
	}

	out, err = run(args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"429 throttled", "429 quota", "total", "100 admitted", "quota 40 per DAY × 1 keys", "+150.0%", "1 of the keys got only 403"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	if _, err := run("--targets", gw.URL, "--path", "/a/prod/x", "--requests", "1", "--admin", admin.URL, "--plan", "nope"); err == nil ||
		!strings.Contains(err.Error(), "read usage plan nope: 404") {
		t.Errorf("unknown plan: %v", err)
	}
	if _, err := run("--targets", gw.URL, "--path", "/a/prod/x", "--requests", "1", "--spread", "1,2"); err == nil ||
		!strings.Contains(err.Error(), "--spread has 2 shares for 1 targets") {
		t.Errorf("spread mismatch: %v", err)
	}
	help, err := run("--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--targets", "--spread", "--path", "--method", "--key", "--rate", "--concurrency",
		"--duration", "--requests", "--admin", "--plan", "--timeout", "--json"} {
		if !strings.Contains(help, flag) {
			t.Errorf("--help does not document %s", flag)
		}
	}
}
