package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliRun runs the binary's CLI against a node's admin API, the endpoint
// given by TOLLGATE_ENDPOINT and nothing read from the user's config
// directory; it returns stdout, stderr and the exit code.
func cliRun(t *testing.T, g *gateway, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cfg := t.TempDir()
	cmd.Env = append(os.Environ(), "TOLLGATE_ENDPOINT="+g.AdminURL, "TOLLGATE_TOKEN="+g.Token,
		"TOLLGATE_CONFIG=", "XDG_CONFIG_HOME="+cfg, "HOME="+cfg)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("run tollgate %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}

// cliJSON runs a CLI command with --output json and decodes its output.
func cliJSON(t *testing.T, g *gateway, v any, args ...string) {
	t.Helper()
	out, errOut, code := cliRun(t, g, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("tollgate %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCLIThroughTheBinary runs the CLI's three most common commands
// against a node: plans create, keys create --plan, usage --plan (and
// usage extend), with a request through the data plane in between; a bad
// value exits non-zero with the admin API's message.
func TestCLIThroughTheBinary(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	api := g.mustAdmin("POST", "/restapis", map[string]any{"name": "pets"}, 201)["id"].(string)
	if _, errOut, code := cliRun(t, g, "stages", "deploy", "--api", api, "prod", "--var", "url="+up.URL); code != 0 {
		t.Fatalf("stages deploy: exit %d\n%s", code, errOut)
	}

	var plan struct{ ID string }
	cliJSON(t, g, &plan, "plans", "create", "--name", "gold", "--rate", "100", "--burst", "100",
		"--quota-limit", "1000", "--quota-period", "DAY", "--stage", api+":prod")
	var key struct{ ID, Value string }
	cliJSON(t, g, &key, "keys", "create", "--name", "acme", "--plan", plan.ID)
	if plan.ID == "" || key.ID == "" || key.Value == "" {
		t.Fatalf("plan %+v, key %+v", plan, key)
	}
	for range 3 {
		if r := g.call("/"+api+"/prod/hello", key.Value); r.Status != 200 {
			t.Fatalf("request with the new key: %d %s", r.Status, r.Body)
		}
	}
	today := time.Now().UTC().Format(time.DateOnly)
	// Usage is reported every 500ms: wait, with a deadline, for it.
	var out string
	eventually(t, 10*time.Second, "usage to show the 3 requests", func() bool {
		var errOut string
		var code int
		out, errOut, code = cliRun(t, g, "usage", "--plan", plan.ID, "--from", today)
		if code != 0 {
			t.Fatalf("usage: exit %d\n%s", code, errOut)
		}
		return strings.Contains(out, today+"  3     997")
	})
	if !strings.Contains(out, key.ID) || !strings.Contains(out, "acme") {
		t.Fatalf("usage:\n%s", out)
	}
	if out, errOut, code := cliRun(t, g, "usage", "extend", "--plan", plan.ID, "--key", key.ID, "--by", "100"); code != 0 || !strings.Contains(out, "1097 remaining, was 997") {
		t.Fatalf("usage extend: exit %d\n%s%s", code, out, errOut)
	}
	csv, _, code := cliRun(t, g, "usage", "--plan", plan.ID, "--csv")
	if code != 0 || !strings.Contains(csv, key.ID+",acme,,"+today+",3,1097") {
		t.Fatalf("usage --csv: exit %d\n%s", code, csv)
	}

	// A bad value: exit 1, the admin API's message, nothing made.
	_, errOut, code := cliRun(t, g, "plans", "create", "--name", "bad", "--quota-limit", "10", "--quota-period", "YEAR")
	if code != 1 || !strings.Contains(errOut, "BadRequestException (400): Invalid quota") {
		t.Fatalf("a bad plan: exit %d\n%s", code, errOut)
	}
	var plans []struct{ ID string }
	cliJSON(t, g, &plans, "plans", "list")
	if len(plans) != 1 {
		t.Fatalf("a refused create made a plan: %+v", plans)
	}

	// A key file: the imported keys and a warning per line not imported.
	file := filepath.Join(t.TempDir(), "keys.csv")
	if err := writeFile(file, "Name,Key,Enabled,UsagePlanIds\nbulk,"+strings.Repeat("b", 30)+",true,"+plan.ID+"\nbad,short,true,\n"); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = cliRun(t, g, "keys", "import", file)
	if code != 0 || !strings.Contains(out, "imported 1 keys, 1 warnings") || !strings.Contains(errOut, "line 3") {
		t.Fatalf("keys import: exit %d\n%s\n%s", code, out, errOut)
	}
}
