package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/smithy-go"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
	pb "github.com/tollgate/tollgate/proto"
)

// cred is a credential as created: what its owner was shown once.
type cred struct{ id, secret, token, role string }

// newCredential creates a credential through the API (as the anonymous
// caller while none exists, else with the token given).
func (e *env) newCredential(role, token string) cred {
	e.t.Helper()
	var hdr []string
	if token != "" {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	r := e.do("POST", "/tollgate/credentials", map[string]any{"name": "ops", "role": role}, hdr...)
	if r.code != 201 {
		e.t.Fatalf("create credential: %d %s", r.code, r.body)
	}
	m := r.json(e.t)
	c := cred{id: m["id"].(string), secret: m["secret"].(string), token: m["token"].(string), role: m["role"].(string)}
	if !strings.HasPrefix(c.id, "TGAK") || len(c.id) != 20 || len(c.secret) != 40 || c.token != c.id+"."+c.secret || c.role != role {
		e.t.Fatalf("created %+v", m)
	}
	return c
}

// signed is a request signed with SigV4 by the AWS SDK's signer at the
// env's time.
func (e *env) signed(method, path, body, akid, secret string) *http.Request {
	e.t.Helper()
	req := localRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "apigateway", "us-east-1", e.clock())
	if err != nil {
		e.t.Fatal(err)
	}
	return req
}

func (e *env) serve(req *http.Request) resp {
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return resp{code: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// TestAuthNoCredentialsLoopbackOnly: while the cluster has no credential,
// callers on this host need none and callers elsewhere are refused; the
// first credential ends that for everyone, loopback included, except
// /healthz.
func TestAuthNoCredentialsLoopbackOnly(t *testing.T) {
	e := newEnv(t)
	remote := func(method, path string) resp {
		req := localRequest(method, path, nil)
		req.RemoteAddr = "192.0.2.7:40000"
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9090}))
		return e.serve(req)
	}
	e.must("GET", "/usageplans", nil, 200)
	wantError(t, remote("GET", "/usageplans"), 403, "AccessDeniedException", "The admin API has no credentials yet*")

	c := e.newCredential("admin", "")
	wantError(t, e.do("GET", "/usageplans", nil), 403, "MissingAuthenticationTokenException", msgMissingToken)
	wantError(t, e.do("GET", "/metrics", nil), 403, "MissingAuthenticationTokenException", msgMissingToken)
	wantError(t, e.do("GET", "/no/such/route", nil), 403, "MissingAuthenticationTokenException", msgMissingToken)
	wantError(t, e.do("POST", "/apikeys", map[string]any{"name": "x"}), 403, "MissingAuthenticationTokenException", msgMissingToken)
	e.must("GET", "/healthz", nil, 200)
	if r := e.do("GET", "/metrics", nil, "Authorization", "Bearer "+c.token); r.code != 200 {
		t.Fatalf("metrics with a token: %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", "/usageplans", nil, "Authorization", "Basic dXNlcjpwYXNz"), 403, "IncompleteSignatureException", "")
	if keys := e.store.Config().GetApiKeys(); len(keys) != 0 {
		t.Fatalf("a refused request created keys: %v", keys)
	}
}

// TestAuthBearerAndRoles: a bearer token authenticates; a read-only
// credential reads but changes nothing and cannot see credentials; a
// wrong or unknown token is refused as the original refuses an unknown
// security token.
func TestAuthBearerAndRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.newCredential("admin", "")
	ro := e.newCredential("read-only", admin.token)
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	if r := e.do("POST", "/apikeys", map[string]any{"name": "k", "enabled": true}, bearer(admin.token)...); r.code != 201 {
		t.Fatalf("admin create key: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/apikeys", nil, bearer(ro.token)...); r.code != 200 {
		t.Fatalf("read-only list: %d %s", r.code, r.body)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/apikeys"}, {"POST", "/usageplans"}, {"PATCH", "/account"},
		{"GET", "/tollgate/credentials"}, {"POST", "/tollgate/credentials"}, {"DELETE", "/tollgate/credentials/" + admin.id},
	} {
		wantError(t, e.do(c.method, c.path, map[string]any{"name": "x", "role": "admin"}, bearer(ro.token)...), 403, "AccessDeniedException", "User: "+ro.id+" is not authorized*")
	}
	if n := len(e.store.Config().GetApiKeys()); n != 1 {
		t.Fatalf("%d keys after read-only writes, want 1", n)
	}
	for _, tok := range []string{admin.id + "." + strings.Repeat("x", 40), "TGAKAAAAAAAAAAAAAAAA." + admin.secret, admin.secret, admin.id, ""} {
		wantError(t, e.do("GET", "/apikeys", nil, bearer(tok)...), 403, "UnrecognizedClientException", msgUnrecognized)
	}

	list := e.do("GET", "/tollgate/credentials", nil, bearer(admin.token)...)
	if list.code != 200 || bytes.Contains(list.body, []byte(admin.secret)) || bytes.Contains(list.body, []byte(ro.secret)) ||
		!bytes.Contains(list.body, []byte(`"createdBy":"`+admin.id+`"`)) {
		t.Fatalf("list: %d %s", list.code, list.body)
	}
	// The last admin credential stays while a read-only one remains.
	wantError(t, e.do("DELETE", "/tollgate/credentials/"+admin.id, nil, bearer(admin.token)...), 409, "ConflictException", "")
	if r := e.do("DELETE", "/tollgate/credentials/"+ro.id, nil, bearer(admin.token)...); r.code != 202 {
		t.Fatalf("delete read-only: %d %s", r.code, r.body)
	}
	wantError(t, e.do("GET", "/apikeys", nil, bearer(ro.token)...), 403, "UnrecognizedClientException", msgUnrecognized)
	// Deleting the last one returns to the no-credential mode.
	if r := e.do("DELETE", "/tollgate/credentials/"+admin.id, nil, bearer(admin.token)...); r.code != 202 {
		t.Fatalf("delete admin: %d %s", r.code, r.body)
	}
	e.must("GET", "/apikeys", nil, 200)
	for _, body := range []map[string]any{{"role": "root"}, {"role": ""}, {"role": "admin", "name": strings.Repeat("n", 200)}} {
		wantError(t, e.do("POST", "/tollgate/credentials", body), 400, "BadRequestException", "")
	}
}

// TestAuthSigV4: requests signed by the AWS SDK's signer with the right
// secret pass, body and all; every way of getting it wrong gets the
// original's error.
func TestAuthSigV4(t *testing.T) {
	e := newEnv(t)
	c := e.newCredential("admin", "")
	body := `{"name":"signed","enabled":true}`
	if r := e.serve(e.signed("POST", "/apikeys?x=1&a=b%20c", body, c.id, c.secret)); r.code != 201 || !strings.Contains(string(r.body), `"signed"`) {
		t.Fatalf("signed create: %d %s", r.code, r.body)
	}
	if r := e.serve(e.signed("GET", "/apikeys", "", c.id, c.secret)); r.code != 200 {
		t.Fatalf("signed list: %d %s", r.code, r.body)
	}

	wantError(t, e.serve(e.signed("GET", "/apikeys", "", c.id, strings.Repeat("w", 40))), 403, "InvalidSignatureException", msgSignatureInvalid)
	wantError(t, e.serve(e.signed("GET", "/apikeys", "", "AKIAIOSFODNN7EXAMPLE", c.secret)), 403, "UnrecognizedClientException", msgUnrecognized)

	tampered := e.signed("POST", "/apikeys", body, c.id, c.secret)
	tampered.Body = io.NopCloser(strings.NewReader(`{"name":"evil","enabled":true}`))
	wantError(t, e.serve(tampered), 403, "InvalidSignatureException", msgSignatureInvalid)
	moved := e.signed("GET", "/apikeys", "", c.id, c.secret)
	moved.URL.Path, moved.RequestURI = "/usageplans", "/usageplans"
	wantError(t, e.serve(moved), 403, "InvalidSignatureException", msgSignatureInvalid)
	query := e.signed("GET", "/apikeys?includeValues=false", "", c.id, c.secret)
	query.URL.RawQuery, query.RequestURI = "includeValues=true", "/apikeys?includeValues=true"
	wantError(t, e.serve(query), 403, "InvalidSignatureException", msgSignatureInvalid)
	hdr := e.signed("POST", "/apikeys", body, c.id, c.secret)
	hdr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	wantError(t, e.serve(hdr), 403, "InvalidSignatureException", msgSignatureInvalid)
	sha := e.signed("POST", "/apikeys", body, c.id, c.secret)
	sha.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
	wantError(t, e.serve(sha), 403, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	token := e.signed("GET", "/apikeys", "", c.id, c.secret)
	token.Header.Set("X-Amz-Security-Token", "session")
	wantError(t, e.serve(token), 403, "UnrecognizedClientException", msgUnrecognized)

	// The clock window: five minutes each way.
	old := e.signed("GET", "/apikeys", "", c.id, c.secret)
	e.advance(5*time.Minute + time.Second)
	wantError(t, e.serve(old), 403, "InvalidSignatureException", "Signature expired: 20260315T120000Z is now earlier than 20260315T120001Z (20260315T120501Z - 5 min.)")
	e.advance(-10*time.Minute - 2*time.Second)
	if r := e.serve(e.signed("GET", "/apikeys", "", c.id, c.secret)); r.code != 200 {
		t.Fatalf("signed at the node's time: %d %s", r.code, r.body)
	}
	e.setNow(testNow)
	future := e.signed("GET", "/apikeys", "", c.id, c.secret)
	e.setNow(testNow.Add(-5*time.Minute - time.Second))
	wantError(t, e.serve(future), 403, "InvalidSignatureException", "Signature not yet current: 20260315T120000Z is still later than 20260315T115959Z (20260315T115459Z + 5 min.)")
	e.setNow(testNow)

	for name, change := range map[string]func(h string) string{
		"other service":   func(h string) string { return strings.Replace(h, "/apigateway/", "/execute-api/", 1) },
		"no signature":    func(h string) string { return h[:strings.Index(h, ", Signature=")] },
		"short signature": func(h string) string { return h[:len(h)-2] },
		"host unsigned":   func(h string) string { return strings.Replace(h, "host;", "", 1) },
		"scope date":      func(h string) string { return strings.Replace(h, "/20260315/", "/20260314/", 1) },
		"twice":           func(h string) string { return h + ", Signature=" + strings.Repeat("0", 64) },
	} {
		req := e.signed("GET", "/apikeys", "", c.id, c.secret)
		req.Header.Set("Authorization", change(req.Header.Get("Authorization")))
		r := e.serve(req)
		if r.code != 403 || (r.header.Get("x-amzn-ErrorType") != "InvalidSignatureException" && r.header.Get("x-amzn-ErrorType") != "IncompleteSignatureException") {
			t.Errorf("%s: %d %s %s", name, r.code, r.header.Get("x-amzn-ErrorType"), r.body)
		}
	}
	noDate := e.signed("GET", "/apikeys", "", c.id, c.secret)
	noDate.Header.Del("X-Amz-Date")
	wantError(t, e.serve(noDate), 403, "IncompleteSignatureException", "")
	if n := len(e.store.Config().GetApiKeys()); n != 1 {
		t.Fatalf("%d keys, want only the signed one", n)
	}
}

// recordingStore keeps the commands the API proposes.
type recordingStore struct {
	Store
	mu   sync.Mutex
	cmds []*pb.Command
}

func (s *recordingStore) Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error) {
	s.mu.Lock()
	s.cmds = append(s.cmds, cmd)
	s.mu.Unlock()
	return s.Store.Apply(ctx, cmd)
}

// TestAuthActorAndAudit: each change's command names who asked for it,
// and one audit line per change says who, what and how it ended, without
// the secret or the key value.
func TestAuthActorAndAudit(t *testing.T) {
	rec := &recordingStore{}
	e := newEnvWithStore(t, func(s Store) Store { rec.Store = s; return rec })
	var logs syncBuf
	srv, err := New(Config{Store: rec, Now: e.clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	c := e.newCredential("admin", "")
	value := strings.Repeat("v", 30)
	e.do("POST", "/apikeys", map[string]any{"name": "k", "value": value}, "Authorization", "Bearer "+c.token)
	e.do("POST", "/usageplans", map[string]any{"name": ""}, "Authorization", "Bearer "+c.token)

	rec.mu.Lock()
	actors := []string{}
	for _, cmd := range rec.cmds {
		if cmd.GetPutAdminCredential() != nil || cmd.GetPutApiKey() != nil {
			actors = append(actors, cmd.Actor)
		}
	}
	rec.mu.Unlock()
	if len(actors) != 2 || actors[0] != "anonymous" || actors[1] != c.id {
		t.Fatalf("actors %v, want [anonymous %s]", actors, c.id)
	}
	out := logs.String()
	for _, want := range []string{
		"msg=audit actor=anonymous role=admin method=POST path=/tollgate/credentials status=201 request_id=",
		"msg=audit actor=" + c.id + " role=admin method=POST path=/apikeys status=201 request_id=",
		"msg=audit actor=" + c.id + " role=admin method=POST path=/usageplans status=400 request_id=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, c.secret) || strings.Contains(out, value) {
		t.Fatalf("the log holds a secret:\n%s", out)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuthAWSSDK: the AWS SDK for Go v2 with a credential's id and secret
// works; with a wrong secret or an unknown id it gets the original's
// errors.
func TestAuthAWSSDK(t *testing.T) {
	e := newEnv(t)
	e.setNow(time.Now())
	c := e.newCredential("admin", "")
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	client := func(akid, secret string) *apigateway.Client {
		return apigateway.New(apigateway.Options{
			Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
			BaseEndpoint: aws.String(ts.URL), RetryMaxAttempts: 1, HTTPClient: ts.Client(),
		})
	}
	ctx := t.Context()
	good := client(c.id, c.secret)
	if _, err := good.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("gold")}); err != nil {
		t.Fatalf("CreateUsagePlan: %v", err)
	}
	if out, err := good.GetUsagePlans(ctx, &apigateway.GetUsagePlansInput{}); err != nil || len(out.Items) != 1 {
		t.Fatalf("GetUsagePlans: %v %v", out, err)
	}
	csv := "name,key,enabled\nimp," + strings.Repeat("i", 30) + ",true\n"
	if _, err := good.ImportApiKeys(ctx, &apigateway.ImportApiKeysInput{Body: []byte(csv), Format: "csv"}); err != nil {
		t.Fatalf("ImportApiKeys: %v", err)
	}
	for _, bad := range []struct{ akid, secret, code string }{
		{c.id, strings.Repeat("w", 40), "InvalidSignatureException"},
		{"AKIAIOSFODNN7EXAMPLE", c.secret, "UnrecognizedClientException"},
	} {
		_, err := client(bad.akid, bad.secret).GetUsagePlans(ctx, &apigateway.GetUsagePlansInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != bad.code {
			t.Fatalf("%s: %v, want %s", bad.akid, err, bad.code)
		}
	}
}

// BenchmarkSigV4Verify is what one signed request costs end to end
// (GET /account): parse, unseal the secret, sign again, compare, answer.
// BenchmarkBearer is the same with a bearer token, for comparison.
func BenchmarkSigV4Verify(b *testing.B) { benchmarkAuth(b, true) }

func BenchmarkBearer(b *testing.B) { benchmarkAuth(b, false) }

func benchmarkAuth(b *testing.B, sigv4 bool) {
	store := clustertest.NewMemStore(cluster.NewFSM())
	srv, err := New(Config{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	id, secret := "TGAKBENCHBENCHBENCH2", strings.Repeat("s", 40)
	if _, err := AddCredentials(b.Context(), store, "anonymous", []Credential{{ID: id, Secret: secret, Role: "admin"}}); err != nil {
		b.Fatal(err)
	}
	req := localRequest("GET", "/account", nil)
	if sigv4 {
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(b.Context(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "apigateway", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+id+"."+secret)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req.Clone(context.Background()))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// TestAuthAnonymousRemote: with Config.AnonymousRemote, callers on other
// hosts are let in without a credential while none exists, and need one
// once one does.
func TestAuthAnonymousRemote(t *testing.T) {
	e := newEnv(t)
	srv, err := New(Config{Store: e.store, Now: e.clock, Logger: slog.New(slog.DiscardHandler), AnonymousRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	remote := func() resp {
		req := localRequest("GET", "/usageplans", nil)
		req.RemoteAddr = "192.0.2.7:40000"
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9090}))
		return e.serve(req)
	}
	if r := remote(); r.code != 200 {
		t.Fatalf("remote without credentials: %d %s", r.code, r.body)
	}
	e.newCredential("admin", "")
	wantError(t, remote(), 403, "MissingAuthenticationTokenException", msgMissingToken)
}
