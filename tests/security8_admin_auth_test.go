package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/smithy-go"
)

// adminCred is what `tollgate admin-credentials create` printed.
type adminCred struct{ id, secret, token string }

var credLines = regexp.MustCompile(`(?m)^Access key id:\s+(\S+)\nSecret access key:\s+(\S+)\nRole:\s+\S+\nBearer token:\s+(\S+)$`)

// createCredential runs `tollgate admin-credentials create` against the
// node, with a token when credentials exist already.
func (g *gateway) createCredential(role, token string) adminCred {
	g.t.Helper()
	out, err := g.cli(token, "admin-credentials", "create", "--role", role, "--name", "test "+role)
	if err != nil {
		g.t.Fatalf("admin-credentials create: %v\n%s", err, out)
	}
	m := credLines.FindStringSubmatch(out)
	if m == nil || m[3] != m[1]+"."+m[2] || !strings.Contains(out, "aws configure set aws_access_key_id "+m[1]) {
		g.t.Fatalf("admin-credentials create printed:\n%s", out)
	}
	return adminCred{id: m[1], secret: m[2], token: m[3]}
}

// cli runs a tollgate subcommand against the node's admin API with
// TOLLGATE_TOKEN set to token.
func (g *gateway) cli(token string, args ...string) (string, error) {
	cmd := exec.Command(binary, append(args, "--endpoint", g.AdminURL)...)
	cmd.Env = append(os.Environ(), "TOLLGATE_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bearer sends an admin request with a bearer token.
func (g *gateway) bearer(token, method, path, body string) apiResp {
	g.t.Helper()
	hdr := []string{"Authorization", "Bearer " + token}
	if body != "" {
		hdr = append(hdr, "Content-Type", "application/json")
	}
	return g.rawAdmin(method, path, "", body, hdr...)
}

func sdkClient(g *gateway, akid, secret string) *apigateway.Client {
	return apigateway.New(apigateway.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		BaseEndpoint: aws.String(g.AdminURL), RetryMaxAttempts: 1,
	})
}

// TestSecurity8SigV4: with a credential created by `tollgate
// admin-credentials create`, the AWS SDK for Go v2 signing with its id and
// secret works; a wrong secret gets InvalidSignatureException and an
// unknown access key id UnrecognizedClientException, both 403 as from the
// original; without a signature the API answers 403
// MissingAuthenticationTokenException, on loopback too.
func TestSecurity8SigV4(t *testing.T) {
	g := startGateway(t, t.TempDir())
	if !strings.Contains(g.logs.String(), "the admin API has no credentials") {
		t.Fatalf("no startup warning about the open admin API:\n%s", g.logs.String())
	}
	c := g.createCredential("admin", "")
	ctx := t.Context()
	good := sdkClient(g, c.id, c.secret)
	plan, err := good.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("gold")})
	if err != nil {
		t.Fatalf("CreateUsagePlan with the right credentials: %v", err)
	}
	key, err := good.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("c1"), Enabled: true})
	if err != nil {
		t.Fatalf("CreateApiKey: %v", err)
	}
	if _, err := good.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: key.Id, KeyType: aws.String("API_KEY")}); err != nil {
		t.Fatalf("CreateUsagePlanKey: %v", err)
	}
	if out, err := good.GetUsagePlans(ctx, &apigateway.GetUsagePlansInput{}); err != nil || len(out.Items) != 1 {
		t.Fatalf("GetUsagePlans: %v %v", out, err)
	}
	for _, bad := range []struct{ akid, secret, code, msg string }{
		{c.id, strings.Repeat("w", 40), "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."},
		{"AKIAIOSFODNN7EXAMPLE", c.secret, "UnrecognizedClientException", "The security token included in the request is invalid."},
	} {
		_, err := sdkClient(g, bad.akid, bad.secret).CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("evil"), Enabled: true})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != bad.code || !strings.HasPrefix(ae.ErrorMessage(), bad.msg) {
			t.Fatalf("%s: %v, want %s", bad.akid, err, bad.code)
		}
	}
	wantRefused(t, "unsigned on loopback", g.admin("GET", "/usageplans", nil), 403, "MissingAuthenticationTokenException")
	if keys := g.bearer(c.token, "GET", "/apikeys", ""); keys.Status != 200 || strings.Contains(string(keys.Body), "evil") {
		t.Fatalf("keys after refused requests: %d %s", keys.Status, keys.Body)
	}
	if !regexp.MustCompile(`msg=audit (node=\S+ )?actor=` + c.id + ` role=admin method=POST path=/usageplans status=201 request_id=\S+`).MatchString(g.logs.String()) {
		t.Fatalf("no audit line for the plan created:\n%s", g.logs.String())
	}
	if strings.Contains(g.logs.String(), c.secret) {
		t.Fatal("the log holds the credential's secret")
	}
}

// TestSecurity8TokensAndRoles: bearer tokens authenticate curl and
// scripts; a read-only credential reads but cannot write (403
// AccessDeniedException) nor manage credentials; once a credential exists
// a request without one is refused even on loopback, /healthz aside;
// /metrics takes any role's token; a deleted credential is refused at once.
func TestSecurity8TokensAndRoles(t *testing.T) {
	g := startGateway(t, t.TempDir())
	g.mustAdmin("GET", "/usageplans", nil, 200) // no credential yet: loopback needs none
	admin := g.createCredential("admin", "")
	if out, err := g.cli("", "admin-credentials", "create"); err == nil || !strings.Contains(out, "MissingAuthenticationTokenException") {
		t.Fatalf("a second create without a token: %v\n%s", err, out)
	}
	ro := g.createCredential("read-only", admin.token)

	wantRefused(t, "no credential", g.admin("GET", "/apikeys", nil), 403, "MissingAuthenticationTokenException")
	wantRefused(t, "no credential, write", g.admin("POST", "/apikeys", map[string]any{"name": "x"}), 403, "MissingAuthenticationTokenException")
	wantRefused(t, "metrics without a credential", g.admin("GET", "/metrics", nil), 403, "MissingAuthenticationTokenException")
	if r := g.admin("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	if r := g.bearer(admin.token, "POST", "/apikeys", `{"name":"k1","enabled":true}`); r.Status != 201 {
		t.Fatalf("admin token create: %d %s", r.Status, r.Body)
	}
	if r := g.bearer(ro.token, "GET", "/apikeys", ""); r.Status != 200 || !strings.Contains(string(r.Body), "k1") {
		t.Fatalf("read-only list: %d %s", r.Status, r.Body)
	}
	if r := g.bearer(ro.token, "GET", "/metrics", ""); r.Status != 200 || !strings.Contains(string(r.Body), "tollgate_admin_requests_total") {
		t.Fatalf("read-only metrics: %d", r.Status)
	}
	wantRefused(t, "read-only write", g.bearer(ro.token, "POST", "/apikeys", `{"name":"k2","enabled":true}`), 403, "AccessDeniedException")
	wantRefused(t, "read-only delete", g.bearer(ro.token, "DELETE", "/tollgate/credentials/"+admin.id, ""), 403, "AccessDeniedException")
	wantRefused(t, "read-only credential list", g.bearer(ro.token, "GET", "/tollgate/credentials", ""), 403, "AccessDeniedException")
	if _, err := sdkClient(g, ro.id, ro.secret).GetApiKeys(t.Context(), &apigateway.GetApiKeysInput{}); err != nil {
		t.Fatalf("read-only SDK read: %v", err)
	}
	_, err := sdkClient(g, ro.id, ro.secret).CreateApiKey(t.Context(), &apigateway.CreateApiKeyInput{Name: aws.String("k3")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("read-only SDK write: %v", err)
	}
	wantRefused(t, "wrong token", g.bearer(admin.id+"."+strings.Repeat("x", 40), "GET", "/apikeys", ""), 403, "UnrecognizedClientException")

	out, err := g.cli(admin.token, "admin-credentials", "list")
	if err != nil || !strings.Contains(out, admin.id) || !strings.Contains(out, ro.id) || strings.Contains(out, admin.secret) || strings.Contains(out, ro.secret) {
		t.Fatalf("admin-credentials list: %v\n%s", err, out)
	}
	if out, err := g.cli(admin.token, "admin-credentials", "delete", ro.id); err != nil {
		t.Fatalf("admin-credentials delete: %v\n%s", err, out)
	}
	wantRefused(t, "deleted credential", g.bearer(ro.token, "GET", "/apikeys", ""), 403, "UnrecognizedClientException")
	if r := g.bearer(admin.token, "GET", "/apikeys", ""); !strings.Contains(string(r.Body), "k1") || strings.Contains(string(r.Body), "k2") || strings.Contains(string(r.Body), "k3") {
		t.Fatalf("keys: %s", r.Body)
	}
}

// TestSecurity8CredentialsFile: a node started with
// --admin-credentials-file has those credentials before its admin API
// answers anyone, and keeps them (once) across a restart; a file others
// can read is warned about.
func TestSecurity8CredentialsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-credentials")
	id, secret := "TGAKFILEFILEFILEFILE", strings.Repeat("f", 40)
	if err := os.WriteFile(file, []byte("# deploy\n"+id+" "+secret+" admin deploy bot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	g := startGateway(t, data, "--admin-credentials-file", file)
	if !strings.Contains(g.logs.String(), "make it 0600") {
		t.Fatalf("no warning about the file's mode:\n%s", g.logs.String())
	}
	wantRefused(t, "no credential", g.admin("GET", "/usageplans", nil), 403, "MissingAuthenticationTokenException")
	if r := g.bearer(id+"."+secret, "GET", "/tollgate/credentials", ""); r.Status != 200 || !strings.Contains(string(r.Body), `"createdBy":"node:`) {
		t.Fatalf("file credential: %d %s", r.Status, r.Body)
	}
	g.stop()
	g = startGateway(t, data, "--admin-credentials-file", file)
	r := g.bearer(id+"."+secret, "GET", "/tollgate/credentials", "")
	if r.Status != 200 || strings.Count(string(r.Body), id) != 1 {
		t.Fatalf("after a restart: %d %s", r.Status, r.Body)
	}
}

// TestSecurity8AWSCLI: the AWS CLI (botocore's signer) with a credential
// works, and with a wrong secret gets InvalidSignatureException.
func TestSecurity8AWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed (.ci/run installs it)")
	}
	g := startGateway(t, t.TempDir())
	c := g.createCredential("admin", "")
	dir := t.TempDir()
	run := func(secret string, args ...string) (string, error) {
		cmd := exec.Command(awsBin, append([]string{"apigateway", "--endpoint-url", g.AdminURL, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+c.id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1",
			"AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(c.secret, "create-usage-plan", "--name", "viacli"); err != nil {
		t.Fatalf("create-usage-plan: %v\n%s", err, out)
	}
	if out, err := run(c.secret, "get-usage-plans"); err != nil || !strings.Contains(out, "viacli") {
		t.Fatalf("get-usage-plans: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "keys.csv")
	if err := os.WriteFile(file, []byte("name,key,enabled\ncli,"+strings.Repeat("c", 30)+",true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(c.secret, "import-api-keys", "--body", "fileb://"+file, "--format", "csv"); err != nil {
		t.Fatalf("import-api-keys: %v\n%s", err, out)
	}
	if out, err := run(strings.Repeat("w", 40), "get-usage-plans"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Fatalf("wrong secret: %v\n%s", err, out)
	}
}
