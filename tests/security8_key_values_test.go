package tests

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keyCycle creates keys on g (generated, chosen and imported), attaches
// them to a plan on a stage in front of up and sends traffic with each;
// it returns the values.
func keyCycle(t *testing.T, g *gateway, up *upstream) (p product, values []string) {
	t.Helper()
	p = setupProduct(t, g, up.URL, map[string]any{})
	chosen := "chosenValueAtRest0123456789"
	k := g.mustAdmin("POST", "/apikeys", map[string]any{"name": "chosen", "enabled": true, "value": chosen}, 201)
	g.mustAdmin("POST", "/usageplans/"+p.PlanID+"/keys", map[string]any{"keyId": k["id"], "keyType": "API_KEY"}, 201)
	imported := []string{"importedValueAtRest0123456789a", "importedValueAtRest0123456789b"}
	csv := "name,key,usageplanids\nimp-a," + imported[0] + "," + p.PlanID + "\nimp-b," + imported[1] + "," + p.PlanID + "\n"
	if ids := g.mustAdmin("POST", "/apikeys?mode=import&format=csv&failonwarnings=true", csv, 201)["ids"].([]any); len(ids) != 2 {
		t.Fatalf("import: ids %v", ids)
	}
	values = append([]string{p.Key, chosen}, imported...)
	path := "/" + p.APIID + "/" + p.Stage + "/pets"
	for _, v := range values {
		if r := g.call(path, v); r.Status != http.StatusOK {
			t.Fatalf("a call with a created key: %d %s", r.Status, r.Body)
		}
	}
	if r := g.call(path, "unknownValueAtRest0123456789"); r.Status != http.StatusForbidden {
		t.Fatalf("a call with an unknown key: %d %s", r.Status, r.Body)
	}
	return p, values
}

// includedValues returns the values GetApiKeys includeValues shows.
func includedValues(t *testing.T, g *gateway) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, it := range g.mustAdmin("GET", "/apikeys?includeValues=true", nil, 200)["item"].([]any) {
		if v, ok := it.(map[string]any)["value"].(string); ok {
			out[v] = true
		}
	}
	return out
}

// filesHolding lists the files under dir whose bytes hold one of values.
func filesHolding(t *testing.T, dir string, values []string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				found = append(found, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no file under %s", dir)
	}
	return found
}

// certsInit runs tollgate certs init in a new directory and returns it.
func certsInit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(binary, "certs", "init", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
	return dir
}

// TestSecurity8KeyValuesNotInDataDir: keys created, imported and used with
// a key-encryption key (from tollgate certs init) leave no value in any
// file of the data dir, before and after a restart; includeValue still
// shows them; the restarted node keeps serving them; a node whose
// key-encryption key file lacks the cluster's key says it is not ready,
// and why.
func TestSecurity8KeyValuesNotInDataDir(t *testing.T) {
	up := newUpstream(t)
	dataDir := t.TempDir()
	kek := filepath.Join(certsInit(t), "kek.key")
	g := startGateway(t, dataDir, "--key-encryption-key", kek)
	if strings.Contains(g.logs.String(), "stored unwrapped") {
		t.Fatal("a node with a key-encryption key warns that the data key is stored unwrapped")
	}
	p, values := keyCycle(t, g, up)
	shown := includedValues(t, g)
	for _, v := range values {
		if !shown[v] {
			t.Fatalf("includeValues does not show a created key's value: %v", shown)
		}
	}
	if found := filesHolding(t, dataDir, values); len(found) > 0 {
		t.Fatalf("the data dir holds key values in %v", found)
	}
	// The search sees what the log holds in the clear: the key's name.
	if found := filesHolding(t, dataDir, []string{"customer-1"}); len(found) == 0 {
		t.Fatal("the data dir does not even hold a key's name: the search sees nothing")
	}
	g.stop()

	g = startGateway(t, dataDir, "--key-encryption-key", kek)
	path := "/" + p.APIID + "/" + p.Stage + "/pets"
	for _, v := range values {
		if r := g.call(path, v); r.Status != http.StatusOK {
			t.Fatalf("after a restart, a call with a created key: %d %s", r.Status, r.Body)
		}
	}
	if got := g.mustAdmin("GET", "/apikeys/"+p.KeyID+"?includeValue=true", nil, 200)["value"]; got != p.Key {
		t.Fatalf("after a restart, includeValue shows %v", got)
	}
	g.stop()
	if found := filesHolding(t, dataDir, values); len(found) > 0 {
		t.Fatalf("after a restart, the data dir holds key values in %v", found)
	}

	// Another key-encryption key: the node cannot unwrap the data key.
	other := filepath.Join(certsInit(t), "kek.key")
	g = launch(t, append(loopbackArgs(dataDir), "--key-encryption-key", other), nil)
	g.waitListening()
	var h healthView
	eventually(t, 30*time.Second, "/healthz to say the node cannot unwrap the data key", func() bool {
		var status int
		status, h = g.health()
		return status == http.StatusServiceUnavailable && h.Status == "not ready" && strings.Contains(h.Reason, "does not hold")
	})
	if r := g.call(path, p.Key); r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a call on a node that cannot unwrap the data key: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(g.logs.String(), "cannot unwrap the cluster's data key") {
		t.Fatalf("the log does not say the node cannot unwrap the data key")
	}
	t.Logf("healthz reason: %s", h.Reason)
}

// TestSecurity8KeyValuesNotInLogs: through a create, import and traffic
// cycle at debug level, and with a node that warns it has no
// key-encryption key, no key value appears in the node's log.
func TestSecurity8KeyValuesNotInLogs(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir(), "--log-level", "debug")
	if !strings.Contains(g.logs.String(), "give --key-encryption-key") {
		t.Fatal("a node without a key-encryption key does not warn")
	}
	_, values := keyCycle(t, g, up)
	includedValues(t, g)
	// A refused value: not a key, and not logged either.
	refused := "refusedValueAtRest0123456789-"
	g.admin("POST", "/apikeys", map[string]any{"value": refused})
	g.stop()
	logs := g.logs.String()
	if !strings.Contains(logs, "request answered by the proxy") {
		t.Fatal("the debug log does not show the proxy's refusals: the test sees too little")
	}
	for _, v := range append(values, refused) {
		if strings.Contains(logs, v) {
			t.Fatalf("the log holds a key value %s", v)
		}
	}
}
