package tests

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestImportExportAndDefaultPlan goes through the real binary: keys
// imported from CSV into a plan, usage exported as CSV for billing, and a
// stage's default plan that a key must leave before it joins another plan
// covering the stage.
func TestImportExportAndDefaultPlan(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, t.TempDir())
	p := setupProduct(t, g, up.URL, map[string]any{"quota": map[string]any{"limit": 100, "period": "MONTH"}})

	csvBody := "Name,Key,Description,Enabled,UsagePlanIds\n" +
		"acme,acmeKey0123456789abcdef01,first,true," + p.PlanID + "\n" +
		"globex,globexKey0123456789abcdef,second,TRUE,nosuchplan\n"
	r := g.admin("POST", "/apikeys?mode=import&format=csv&failonwarnings=false", csvBody)
	if r.Status != 201 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	imp := r.JSON(t)
	if ids, _ := imp["ids"].([]any); len(ids) != 2 {
		t.Fatalf("import ids: %v", imp)
	}
	if w, _ := imp["warnings"].([]any); len(w) != 1 || !strings.Contains(w[0].(string), "nosuchplan") {
		t.Fatalf("import warnings: %v", imp["warnings"])
	}
	// failonwarnings: the same file changes nothing.
	before := g.admin("GET", "/apikeys", nil).Body
	if r := g.admin("POST", "/apikeys?mode=import&format=csv&failonwarnings=true", strings.ReplaceAll(csvBody, "acme", "acme2")); r.Status != 400 {
		t.Fatalf("import with failonwarnings: %d %s", r.Status, r.Body)
	}
	if after := g.admin("GET", "/apikeys", nil).Body; string(after) != string(before) {
		t.Fatal("a refused import changed the keys")
	}

	path := "/" + p.APIID + "/" + p.Stage + "/invoice"
	for range 3 {
		if r := g.call(path, "acmeKey0123456789abcdef01"); r.Status != 200 {
			t.Fatalf("imported key: %d %s", r.Status, r.Body)
		}
	}
	if r := g.call(path, "globexKey0123456789abcdef"); r.Status != 403 {
		t.Fatalf("imported key in no plan: %d", r.Status)
	}

	// Export for billing: one CSV row per key per day.
	today := time.Now().UTC().Format("2006-01-02")
	var rows [][]string
	eventually(t, 10*time.Second, "the export to show acme's 3 requests", func() bool {
		req, _ := http.NewRequest("GET", g.AdminURL+"/usageplans/"+p.PlanID+"/usage?startDate="+today+"&endDate="+today, nil)
		req.Header.Set("Accept", "text/csv")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("export Content-Type %q", resp.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(resp.Body)
		rows, err = csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatalf("export is not CSV: %v\n%s", err, b)
		}
		for _, row := range rows[1:] {
			if len(row) >= 6 && row[1] == "acme" && row[4] == "3" && row[5] == "97" {
				return true
			}
		}
		return false
	})
	if strings.Join(rows[0], ",") != "keyId,name,customerId,date,used,remaining" {
		t.Fatalf("export header: %v", rows[0])
	}

	// A default plan on a second stage takes in every key; moving a key to
	// another plan on that stage needs it to leave the default one first.
	g.mustAdmin("POST", "/restapis/"+p.APIID+"/stages", map[string]any{
		"stageName": "beta", "deploymentId": firstDeployment(t, g, p.APIID), "variables": map[string]string{"url": up.URL},
	}, 201)
	def := g.mustAdmin("POST", "/restapis/"+p.APIID+"/stages/beta/defaultusageplan", nil, 201)
	defID := def["id"].(string)
	if r := g.call("/"+p.APIID+"/beta/x", "globexKey0123456789abcdef"); r.Status != 200 {
		t.Fatalf("key in the default plan: %d %s", r.Status, r.Body)
	}
	silver := g.mustAdmin("POST", "/usageplans", map[string]any{"name": "silver",
		"apiStages": []map[string]any{{"apiId": p.APIID, "stage": "beta"}}}, 201)["id"].(string)
	globex := keyIDByName(t, g, "globex")
	if r := g.admin("POST", "/usageplans/"+silver+"/keys", map[string]any{"keyId": globex, "keyType": "API_KEY"}); r.Status != 409 {
		t.Fatalf("key in two plans on one stage: %d %s", r.Status, r.Body)
	}
	g.mustAdmin("DELETE", "/usageplans/"+defID+"/keys/"+globex, nil, 202)
	g.mustAdmin("POST", "/usageplans/"+silver+"/keys", map[string]any{"keyId": globex, "keyType": "API_KEY"}, 201)
	if r := g.call("/"+p.APIID+"/beta/x", "globexKey0123456789abcdef"); r.Status != 200 {
		t.Fatalf("key moved to silver: %d %s", r.Status, r.Body)
	}
}

func firstDeployment(t *testing.T, g *gateway, apiID string) string {
	t.Helper()
	items, _ := g.mustAdmin("GET", "/restapis/"+apiID+"/deployments", nil, 200)["item"].([]any)
	if len(items) == 0 {
		t.Fatal("no deployment")
	}
	return items[0].(map[string]any)["id"].(string)
}

func keyIDByName(t *testing.T, g *gateway, name string) string {
	t.Helper()
	items, _ := g.mustAdmin("GET", "/apikeys?name="+name, nil, 200)["item"].([]any)
	if len(items) != 1 {
		t.Fatalf("keys named %s: %v", name, items)
	}
	return items[0].(map[string]any)["id"].(string)
}
