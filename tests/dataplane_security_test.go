package tests

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// addStage deploys one more stage of p's API with the given variables, and
// puts p's key in a new plan covering it.
func addStage(t *testing.T, g *gateway, p product, stage string, vars map[string]string) {
	t.Helper()
	g.mustAdmin("POST", "/restapis/"+p.APIID+"/deployments", map[string]any{"stageName": stage, "variables": vars}, 201)
	up := g.mustAdmin("POST", "/usageplans", map[string]any{
		"name": "plan-" + stage, "apiStages": []map[string]any{{"apiId": p.APIID, "stage": stage}},
	}, 201)
	g.mustAdmin("POST", "/usageplans/"+up["id"].(string)+"/keys", map[string]any{"keyId": p.KeyID, "keyType": "API_KEY"}, 201)
}

// rawResp is an answer read off a raw connection.
type rawResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// rawRequest sends head (a request line and headers, without the blank
// line) on a new connection to addr and reads one answer. The request
// target goes out exactly as written: no client cleans or re-escapes it.
func rawRequest(t *testing.T, addr, head string) rawResp {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, head+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer to %q: %v", head, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResp{resp.StatusCode, resp.Header, b}
}

// isAnswer reports whether r is one of the proxy's own answers with the
// given status and x-amzn-ErrorType.
func isAnswer(r rawResp, status int, errType string) bool {
	return r.Status == status && r.Header.Get("x-amzn-ErrorType") == errType &&
		r.Header.Get("Content-Type") == "application/json" && bytes.HasPrefix(r.Body, []byte(`{"message":`))
}
