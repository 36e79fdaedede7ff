package admin

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
)

func sdkClient(t *testing.T, e *env) *apigateway.Client {
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	return apigateway.New(apigateway.Options{
		Region:           "eu-west-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(ts.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       ts.Client(),
	})
}

func sdkOp(op types.Op, path, value string) types.PatchOperation {
	return types.PatchOperation{Op: op, Path: aws.String(path), Value: aws.String(value)}
}

// TestSDKMigrationShapes drives, with the AWS SDK for Go v2, the calls a
// user migrating from Amazon API Gateway makes that used to be refused or
// shaped otherwise: tags by ARN on plans, keys, APIs and stages; deleting
// a stage a plan covers; DeleteDeployment and UpdateDeployment;
// methodSettings keys as "~1pets/GET" and patched through "~1"; a
// throttle rate without a burst; update-account /cloudwatchRoleArn;
// update-stage tracing, access log and caching paths; the stored-only
// fields of an API and a stage.
func TestSDKMigrationShapes(t *testing.T) {
	e := newEnv(t)
	agw := sdkClient(t, e)
	ctx := t.Context()

	api, err := agw.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("pets"),
		EndpointConfiguration:     &types.EndpointConfiguration{Types: []types.EndpointType{types.EndpointTypeEdge}},
		DisableExecuteApiEndpoint: true})
	if err != nil {
		t.Fatalf("CreateRestApi: %v", err)
	}
	if len(api.EndpointConfiguration.Types) != 1 || api.EndpointConfiguration.Types[0] != types.EndpointTypeEdge || !api.DisableExecuteApiEndpoint {
		t.Fatalf("CreateRestApi answered %+v", api)
	}
	plain, err := agw.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("plain")})
	if err != nil || len(plain.EndpointConfiguration.Types) != 1 || plain.EndpointConfiguration.Types[0] != types.EndpointTypeRegional {
		t.Fatalf("CreateRestApi without an endpoint configuration: %+v %v", plain, err)
	}
	d1, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"url": "https://backend.example.com"}})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	if _, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("dev"),
		Variables: map[string]string{"url": "https://backend.example.com"}}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}

	// Stage settings, at creation and by UpdateStage.
	cs, err := agw.CreateStage(ctx, &apigateway.CreateStageInput{RestApiId: api.Id, StageName: aws.String("qa"), DeploymentId: d1.Id,
		TracingEnabled: true, CacheClusterEnabled: true, CacheClusterSize: types.CacheClusterSize("1.6")})
	if err != nil || !cs.TracingEnabled || !cs.CacheClusterEnabled || cs.CacheClusterSize != types.CacheClusterSize("1.6") {
		t.Fatalf("CreateStage with tracing and a cache cluster: %+v %v", cs, err)
	}
	if _, err := agw.DeleteStage(ctx, &apigateway.DeleteStageInput{RestApiId: api.Id, StageName: aws.String("qa")}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	st, err := agw.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: api.Id, StageName: aws.String("prod"),
		PatchOperations: []types.PatchOperation{
			sdkOp(types.OpReplace, "/~1pets/GET/throttling/rateLimit", "10"),
			sdkOp(types.OpReplace, "/~1pets/GET/throttling/burstLimit", "20"),
			sdkOp(types.OpReplace, "/pets/{id}/GET/caching/enabled", "true"),
			sdkOp(types.OpReplace, "/pets/{id}/GET/caching/ttlInSeconds", "60"),
			sdkOp(types.OpReplace, "/tracingEnabled", "true"),
			sdkOp(types.OpReplace, "/cacheClusterEnabled", "true"),
			sdkOp(types.OpReplace, "/cacheClusterSize", "0.5"),
			sdkOp(types.OpReplace, "/accessLogSettings/destinationArn", "arn:aws:logs:eu-west-1:123456789012:log-group:access"),
			sdkOp(types.OpReplace, "/accessLogSettings/format", "$context.requestId"),
		}})
	if err != nil {
		t.Fatalf("UpdateStage: %v", err)
	}
	pets, ok := st.MethodSettings["~1pets/GET"]
	byID, ok2 := st.MethodSettings["~1pets~1{id}/GET"]
	if !ok || !ok2 || pets.ThrottlingRateLimit != 10 || pets.ThrottlingBurstLimit != 20 || !byID.CachingEnabled || byID.CacheTtlInSeconds != 60 ||
		!st.TracingEnabled || !st.CacheClusterEnabled || st.CacheClusterSize != types.CacheClusterSize("0.5") ||
		aws.ToString(st.AccessLogSettings.Format) != "$context.requestId" || st.CacheClusterStatus != types.CacheClusterStatusNotAvailable {
		t.Fatalf("UpdateStage answered %+v %+v", st, st.MethodSettings)
	}
	st, err = agw.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: api.Id, StageName: aws.String("prod"),
		PatchOperations: []types.PatchOperation{{Op: types.OpRemove, Path: aws.String("/~1pets~1{id}/GET")}, {Op: types.OpRemove, Path: aws.String("/accessLogSettings")}}})
	if _, has := st.MethodSettings["~1pets~1{id}/GET"]; err != nil || has || st.AccessLogSettings != nil {
		t.Fatalf("UpdateStage removes: %+v %v", st, err)
	}

	// Account.
	acct, err := agw.UpdateAccount(ctx, &apigateway.UpdateAccountInput{PatchOperations: []types.PatchOperation{
		sdkOp(types.OpReplace, "/cloudwatchRoleArn", "arn:aws:iam::123456789012:role/apigw-logs")}})
	if err != nil || aws.ToString(acct.CloudwatchRoleArn) != "arn:aws:iam::123456789012:role/apigw-logs" {
		t.Fatalf("UpdateAccount: %+v %v", acct, err)
	}

	// A rate without a burst.
	plan, err := agw.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("gold"),
		Throttle:  &types.ThrottleSettings{RateLimit: 10},
		ApiStages: []types.ApiStage{{ApiId: api.Id, Stage: aws.String("prod")}, {ApiId: api.Id, Stage: aws.String("dev")}}})
	if err != nil || plan.Throttle.RateLimit != 10 || plan.Throttle.BurstLimit != 0 {
		t.Fatalf("CreateUsagePlan with a rate alone: %+v %v", plan, err)
	}
	key, err := agw.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("c1"), Enabled: true})
	if err != nil {
		t.Fatalf("CreateApiKey: %v", err)
	}

	// Tags by ARN on each kind.
	arns := map[string]string{
		"plan":  "arn:aws:apigateway:eu-west-1::/usageplans/" + aws.ToString(plan.Id),
		"key":   "arn:aws:apigateway:eu-west-1::/apikeys/" + aws.ToString(key.Id),
		"api":   "arn:aws:apigateway:eu-west-1::/restapis/" + aws.ToString(api.Id),
		"stage": "arn:aws:apigateway:eu-west-1::/restapis/" + aws.ToString(api.Id) + "/stages/prod",
	}
	for kind, arn := range arns {
		if _, err := agw.TagResource(ctx, &apigateway.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"team": "pay", "env": kind}}); err != nil {
			t.Fatalf("TagResource %s: %v", kind, err)
		}
		if _, err := agw.UntagResource(ctx, &apigateway.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team", "absent"}}); err != nil {
			t.Fatalf("UntagResource %s: %v", kind, err)
		}
		got, err := agw.GetTags(ctx, &apigateway.GetTagsInput{ResourceArn: aws.String(arn)})
		if err != nil || len(got.Tags) != 1 || got.Tags["env"] != kind {
			t.Fatalf("GetTags %s: %+v %v", kind, got, err)
		}
	}
	if got, err := agw.GetTags(ctx, &apigateway.GetTagsInput{ResourceArn: aws.String("arn:aws-cn:apigateway:cn-north-1::/usageplans/" + aws.ToString(plan.Id))}); err != nil || got.Tags["env"] != "plan" {
		t.Fatalf("GetTags in another partition and region: %+v %v", got, err)
	}
	if p, err := agw.GetUsagePlan(ctx, &apigateway.GetUsagePlanInput{UsagePlanId: plan.Id}); err != nil || p.Tags["env"] != "plan" {
		t.Fatalf("GetUsagePlan shows the tags: %+v %v", p, err)
	}
	var nf *types.NotFoundException
	if _, err := agw.GetTags(ctx, &apigateway.GetTagsInput{ResourceArn: aws.String("arn:aws:apigateway:eu-west-1::/usageplans/nope")}); !errors.As(err, &nf) {
		t.Fatalf("GetTags of a missing plan: %v", err)
	}
	var br *types.BadRequestException
	if _, err := agw.TagResource(ctx, &apigateway.TagResourceInput{ResourceArn: aws.String("arn:aws:s3:::bucket"), Tags: map[string]string{"a": "b"}}); !errors.As(err, &br) {
		t.Fatalf("TagResource of another service's ARN: %v", err)
	}
	if _, err := agw.TagResource(ctx, &apigateway.TagResourceInput{ResourceArn: aws.String(arns["key"]), Tags: map[string]string{"aws:x": "b"}}); !errors.As(err, &br) {
		t.Fatalf("TagResource with a reserved key: %v", err)
	}

	// Deleting a stage detaches it from the plan; its deployment can then
	// be deleted, the one a stage serves cannot.
	if _, err := agw.DeleteStage(ctx, &apigateway.DeleteStageInput{RestApiId: api.Id, StageName: aws.String("dev")}); err != nil {
		t.Fatalf("DeleteStage of a stage in a plan: %v", err)
	}
	p, err := agw.GetUsagePlan(ctx, &apigateway.GetUsagePlanInput{UsagePlanId: plan.Id})
	if err != nil || len(p.ApiStages) != 1 || aws.ToString(p.ApiStages[0].Stage) != "prod" {
		t.Fatalf("plan after DeleteStage: %+v %v", p, err)
	}
	deps, err := agw.GetDeployments(ctx, &apigateway.GetDeploymentsInput{RestApiId: api.Id})
	if err != nil || len(deps.Items) != 2 {
		t.Fatalf("GetDeployments: %+v %v", deps, err)
	}
	for _, d := range deps.Items {
		_, err := agw.DeleteDeployment(ctx, &apigateway.DeleteDeploymentInput{RestApiId: api.Id, DeploymentId: d.Id})
		if served := aws.ToString(d.Id) == aws.ToString(d1.Id); served != errors.As(err, &br) {
			t.Fatalf("DeleteDeployment %s (served: %v): %v", aws.ToString(d.Id), served, err)
		}
	}
	ud, err := agw.UpdateDeployment(ctx, &apigateway.UpdateDeploymentInput{RestApiId: api.Id, DeploymentId: d1.Id,
		PatchOperations: []types.PatchOperation{sdkOp(types.OpReplace, "/description", "live")}})
	if err != nil || aws.ToString(ud.Description) != "live" {
		t.Fatalf("UpdateDeployment: %+v %v", ud, err)
	}

	// Deleting the API detaches its last stage.
	if _, err := agw.DeleteRestApi(ctx, &apigateway.DeleteRestApiInput{RestApiId: api.Id}); err != nil {
		t.Fatalf("DeleteRestApi of an API in a plan: %v", err)
	}
	if p, err := agw.GetUsagePlan(ctx, &apigateway.GetUsagePlanInput{UsagePlanId: plan.Id}); err != nil || len(p.ApiStages) != 0 {
		t.Fatalf("plan after DeleteRestApi: %+v %v", p, err)
	}
}
