package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrateAWSCLI runs the AWS CLI against a node the way the README's
// "Coming from Amazon API Gateway" section says: the environment lines of
// the README (a region and any credentials while the cluster has no admin
// credential; without a region the CLI itself refuses), then the calls a
// migrating user makes that used to be refused: tags by ARN, a rate
// without a burst, update-account /cloudwatchRoleArn, update-stage with
// "~1" paths, tracing and access logs, delete-stage of a stage a plan
// covers, delete-deployment and update-deployment.
func TestMigrateAWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed (.ci/run installs it)")
	}
	g := startGateway(t, t.TempDir())
	dir := t.TempDir()
	base := []string{"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "AWS_MAX_ATTEMPTS=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			base = append(base, kv)
		}
	}
	// The README's lines.
	readme := []string{"AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any"}
	cli := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(awsBin, append([]string{"apigateway", "--endpoint-url", g.AdminURL, "--output", "json"}, args...)...)
		cmd.Env = append(append([]string{}, base...), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := cli(readme, args...)
		if err != nil {
			t.Fatalf("aws apigateway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		m := map[string]any{}
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("aws apigateway %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return m
	}
	if out, err := cli(readme[1:], "get-usage-plans"); err == nil || !strings.Contains(out, "region") {
		t.Fatalf("without a region the CLI should refuse: %v\n%s", err, out)
	}
	run("get-usage-plans")

	api := run("create-rest-api", "--name", "pets")["id"].(string)
	up := newUpstream(t)
	run("create-deployment", "--rest-api-id", api, "--stage-name", "prod", "--variables", "url="+up.URL)
	dev := run("create-deployment", "--rest-api-id", api, "--stage-name", "dev", "--variables", "url="+up.URL)["id"].(string)
	plan := run("create-usage-plan", "--name", "gold", "--throttle", "rateLimit=10",
		"--api-stages", "apiId="+api+",stage=prod", "apiId="+api+",stage=dev")
	if th := plan["throttle"].(map[string]any); th["rateLimit"] != 10.0 || th["burstLimit"] != 0.0 {
		t.Fatalf("create-usage-plan with a rate alone: %v", plan)
	}
	planID := plan["id"].(string)

	arn := "arn:aws:apigateway:us-east-1::/usageplans/" + planID
	run("tag-resource", "--resource-arn", arn, "--tags", "team=pay,tier=gold")
	run("untag-resource", "--resource-arn", arn, "--tag-keys", "tier")
	if tags := run("get-tags", "--resource-arn", arn)["tags"].(map[string]any); len(tags) != 1 || tags["team"] != "pay" {
		t.Fatalf("get-tags: %v", tags)
	}
	stageARN := "arn:aws:apigateway:us-east-1::/restapis/" + api + "/stages/prod"
	run("tag-resource", "--resource-arn", stageARN, "--tags", "env=prod")
	if tags := run("get-tags", "--resource-arn", stageARN)["tags"].(map[string]any); tags["env"] != "prod" {
		t.Fatalf("get-tags of a stage: %v", tags)
	}

	if a := run("update-account", "--patch-operations", "op=replace,path=/cloudwatchRoleArn,value=arn:aws:iam::123456789012:role/logs"); a["cloudwatchRoleArn"] != "arn:aws:iam::123456789012:role/logs" {
		t.Fatalf("update-account: %v", a)
	}
	st := run("update-stage", "--rest-api-id", api, "--stage-name", "prod", "--patch-operations",
		"op=replace,path=/~1pets/GET/throttling/rateLimit,value=5",
		"op=replace,path=/~1pets/GET/throttling/burstLimit,value=10",
		"op=replace,path=/tracingEnabled,value=true",
		"op=replace,path=/accessLogSettings/destinationArn,value=arn:aws:logs:us-east-1:123456789012:log-group:a",
		"op=replace,path=/accessLogSettings/format,value=$context.requestId")
	if _, ok := st["methodSettings"].(map[string]any)["~1pets/GET"]; !ok || st["tracingEnabled"] != true {
		t.Fatalf("update-stage: %v", st)
	}

	run("delete-stage", "--rest-api-id", api, "--stage-name", "dev")
	if stages := run("get-usage-plan", "--usage-plan-id", planID)["apiStages"].([]any); len(stages) != 1 {
		t.Fatalf("the plan after delete-stage: %v", stages)
	}
	if d := run("update-deployment", "--rest-api-id", api, "--deployment-id", dev, "--patch-operations", "op=replace,path=/description,value=old"); d["description"] != "old" {
		t.Fatalf("update-deployment: %v", d)
	}
	run("delete-deployment", "--rest-api-id", api, "--deployment-id", dev)
	if out, err := cli(readme, "get-deployment", "--rest-api-id", api, "--deployment-id", dev); err == nil || !strings.Contains(out, "NotFoundException") {
		t.Fatalf("get-deployment after delete-deployment: %v\n%s", err, out)
	}
}
