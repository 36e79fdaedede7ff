package tests

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// composeProject is the repository's docker-compose.yml, brought up under
// a project name of its own, with test images and free host ports.
type composeProject struct {
	t    *testing.T
	name string
	env  []string
	// image and lbImage are the tags make images built.
	image, lbImage string
	// DataURL is the load balancer; admin the three nodes' admin APIs.
	DataURL string
	admin   []*gateway
}

// freeLoopbackPort returns a port that was free on 127.0.0.1.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// composeUp builds the images with make images and runs docker-compose up
// -d; the project goes down with its volumes when the test ends, its logs
// printed first if the test failed.
func composeUp(t *testing.T) *composeProject {
	t.Helper()
	needDocker(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	image, lbImage := "tollgate:compose-"+id, "tollgate-caddy:compose-"+id
	makeImages(t, image, lbImage)
	p := &composeProject{t: t, name: "tgcompose" + id, image: image, lbImage: lbImage}
	port := freeLoopbackPort(t)
	p.env = append(os.Environ(), "TOLLGATE_IMAGE="+image, "CADDY_IMAGE="+lbImage, "TOLLGATE_PORT="+port)
	p.DataURL = "http://127.0.0.1:" + port
	for i := 1; i <= 3; i++ {
		ap := freeLoopbackPort(t)
		p.env = append(p.env, fmt.Sprintf("TOLLGATE_ADMIN_PORT_%d=%s", i, ap))
		p.admin = append(p.admin, &gateway{t: t, AdminURL: "http://127.0.0.1:" + ap, DataURL: p.DataURL})
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run("logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := p.run("down", "-v", "--timeout", "5"); err != nil {
			t.Logf("docker-compose down: %v\n%s", err, out)
		}
	})
	if out, err := p.run("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	return p
}

// run runs docker-compose on the repository's compose file for this project.
func (p *composeProject) run(args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", p.name, "-f", "../docker-compose.yml"}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSecurity8ComposeClusterRunsWithTLSAndAuth: the compose file's three
// nodes form a cluster over mutual TLS and encrypted gossip, seal key
// values under the key-encryption key, and their admin APIs refuse a
// request without the credential the pki service made and accept it
// with its bearer token; traffic through the load balancer reaches the
// demo upstream with a key, and is refused without one or beyond the
// plan's throttle.
func TestSecurity8ComposeClusterRunsWithTLSAndAuth(t *testing.T) {
	p := composeUp(t)
	out, err := p.run("run", "--rm", "-T", "pki", "admin-credentials", "token", "--file", "/pki/admin.credentials")
	if err != nil {
		t.Fatalf("token: %v\n%s", err, out)
	}
	lines := strings.Fields(out)
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "TGAK") || !strings.Contains(token, ".") {
		t.Fatalf("no bearer token in %q", out)
	}

	for i, g := range p.admin {
		eventually(t, 60*time.Second, fmt.Sprintf("tg%d to answer /healthz 200", i+1), func() bool {
			resp, err := client.Get(g.AdminURL + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		r := g.admin("GET", "/usageplans", nil)
		if r.Status != 403 || r.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
			t.Fatalf("tg%d without a credential: %d %s %s", i+1, r.Status, r.Header.Get("x-amzn-ErrorType"), r.Body)
		}
		g.Token = token
	}
	eventually(t, 60*time.Second, "three voters and a leader", func() bool {
		v, ok := p.admin[0].cluster()
		return ok && v.Leader != "" && v.voters() == 3
	})
	for i := 1; i <= 3; i++ {
		logs, _ := p.run("logs", "--no-color", fmt.Sprintf("tg%d", i))
		if !strings.Contains(logs, "cluster transport: mutual TLS on Raft and gRPC, gossip encrypted") {
			t.Fatalf("tg%d does not say its transport is mutual TLS:\n%s", i, logs)
		}
		for _, bad := range []string{"--cluster-insecure", "stored unwrapped", "has no credentials"} {
			if strings.Contains(logs, bad) {
				t.Fatalf("tg%d logs %q:\n%s", i, bad, logs)
			}
		}
	}

	g := p.admin[1] // any node answers the admin API
	api := g.mustAdmin("POST", "/restapis", map[string]any{"name": "pets"}, 201)["id"].(string)
	g.mustAdmin("POST", "/restapis/"+api+"/deployments", map[string]any{"stageName": "prod", "variables": map[string]string{"url": "http://upstream:3000"}}, 201)
	plan := g.mustAdmin("POST", "/usageplans", map[string]any{"name": "gold",
		"throttle":  map[string]any{"rateLimit": 1, "burstLimit": 3},
		"apiStages": []map[string]string{{"apiId": api, "stage": "prod"}}}, 201)["id"].(string)
	key := g.mustAdmin("POST", "/apikeys", map[string]any{"name": "acme", "enabled": true}, 201)
	g.mustAdmin("POST", "/usageplans/"+plan+"/keys", map[string]any{"keyId": key["id"], "keyType": "API_KEY"}, 201)
	// tg3 reads its own state: once it applied the write.
	eventually(t, 10*time.Second, "tg3 to show the key's value", func() bool {
		r := p.admin[2].admin("GET", "/apikeys/"+key["id"].(string)+"?includeValue=true", nil)
		return r.Status == 200 && r.JSON(t)["value"] == key["value"]
	})

	get := func(withKey bool) (int, string) {
		req, _ := http.NewRequest("GET", p.DataURL+"/"+api+"/prod/hello", nil)
		if withKey {
			req.Header.Set("x-api-key", key["value"].(string))
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var body struct {
			Path string `json:"path"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Path
	}
	eventually(t, 30*time.Second, "a request with the key to reach the upstream through the load balancer", func() bool {
		code, path := get(true)
		return code == 200 && path == "/hello"
	})
	if code, _ := get(false); code != 403 {
		t.Fatalf("without a key: %d, want 403", code)
	}
	codes := map[int]int{}
	for range 15 {
		code, _ := get(true)
		codes[code]++
	}
	if codes[429] == 0 {
		t.Fatalf("15 requests at once on a plan of 1 r/s, burst 3: %v, want some 429", codes)
	}
}
