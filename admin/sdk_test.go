package admin

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
)

// TestAWSSDKCompatibility drives the admin API with the AWS SDK for Go v2
// pointed at it, as a user with an endpoint override would.
func TestAWSSDKCompatibility(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	agw := apigateway.New(apigateway.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(ts.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       ts.Client(),
	})
	ctx := t.Context()

	api, err := agw.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("pets"), Description: aws.String("d")})
	if err != nil {
		t.Fatalf("CreateRestApi: %v", err)
	}
	if api.ApiKeySource != types.ApiKeySourceTypeHeader || api.CreatedDate == nil || api.CreatedDate.Unix() != testNow.Unix() {
		t.Fatalf("CreateRestApi answered %+v", api)
	}
	dep, err := agw.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"url": "https://backend.example.com"},
	})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	st, err := agw.GetStage(ctx, &apigateway.GetStageInput{RestApiId: api.Id, StageName: aws.String("prod")})
	if err != nil || aws.ToString(st.DeploymentId) != aws.ToString(dep.Id) || st.Variables["url"] != "https://backend.example.com" {
		t.Fatalf("GetStage: %+v %v", st, err)
	}
	if _, err := agw.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: api.Id, StageName: aws.String("prod"),
		PatchOperations: []types.PatchOperation{
			{Op: types.OpReplace, Path: aws.String("/*/*/throttling/rateLimit"), Value: aws.String("100")},
			{Op: types.OpReplace, Path: aws.String("/*/*/throttling/burstLimit"), Value: aws.String("50")},
		}}); err != nil {
		t.Fatalf("UpdateStage: %v", err)
	}
	st, err = agw.GetStage(ctx, &apigateway.GetStageInput{RestApiId: api.Id, StageName: aws.String("prod")})
	if err != nil || st.MethodSettings["*/*"].ThrottlingRateLimit != 100 || st.MethodSettings["*/*"].ThrottlingBurstLimit != 50 {
		t.Fatalf("GetStage after UpdateStage: %+v %v", st.MethodSettings, err)
	}

	plan, err := agw.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{
		Name:      aws.String("gold"),
		ApiStages: []types.ApiStage{{ApiId: api.Id, Stage: aws.String("prod"), Throttle: map[string]types.ThrottleSettings{"/pets/GET": {BurstLimit: 2, RateLimit: 1}}}},
		Throttle:  &types.ThrottleSettings{RateLimit: 10, BurstLimit: 20},
		Quota:     &types.QuotaSettings{Limit: 1000, Period: types.QuotaPeriodTypeDay},
	})
	if err != nil {
		t.Fatalf("CreateUsagePlan: %v", err)
	}
	if plan.Quota.Limit != 1000 || plan.Quota.Period != types.QuotaPeriodTypeDay || plan.Throttle.RateLimit != 10 ||
		plan.ApiStages[0].Throttle["/pets/GET"].BurstLimit != 2 {
		t.Fatalf("CreateUsagePlan answered %+v", plan)
	}
	key, err := agw.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("c1"), Enabled: true})
	if err != nil || !key.Enabled || len(aws.ToString(key.Value)) != keyValueLen {
		t.Fatalf("CreateApiKey: %+v %v", key, err)
	}
	pk, err := agw.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: key.Id, KeyType: aws.String("API_KEY")})
	if err != nil || aws.ToString(pk.Id) != aws.ToString(key.Id) || aws.ToString(pk.Value) != aws.ToString(key.Value) {
		t.Fatalf("CreateUsagePlanKey: %+v %v", pk, err)
	}

	e.report(aws.ToString(plan.Id), aws.ToString(key.Id), testNow, 7)
	u, err := agw.GetUsage(ctx, &apigateway.GetUsageInput{UsagePlanId: plan.Id, StartDate: aws.String("2026-03-14"), EndDate: aws.String("2026-03-15")})
	if err != nil {
		t.Fatalf("GetUsage: %v", err)
	}
	if got := u.Items[aws.ToString(key.Id)]; len(got) != 2 || got[0][0] != 0 || got[0][1] != 1000 || got[1][0] != 7 || got[1][1] != 993 {
		t.Fatalf("GetUsage items %v", u.Items)
	}
	u2, err := agw.UpdateUsage(ctx, &apigateway.UpdateUsageInput{UsagePlanId: plan.Id, KeyId: key.Id,
		PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/remaining"), Value: aws.String("5000")}}})
	if err != nil || u2.Items[aws.ToString(key.Id)][0][1] != 5000 {
		t.Fatalf("UpdateUsage: %+v %v", u2, err)
	}

	upd, err := agw.UpdateUsagePlan(ctx, &apigateway.UpdateUsagePlanInput{UsagePlanId: plan.Id, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/apiStages/" + aws.ToString(api.Id) + ":prod/throttle//pets/GET/rateLimit"), Value: aws.String("3.5")},
		{Op: types.OpReplace, Path: aws.String("/name"), Value: aws.String("platinum")},
	}})
	if err != nil || aws.ToString(upd.Name) != "platinum" || upd.ApiStages[0].Throttle["/pets/GET"].RateLimit != 3.5 {
		t.Fatalf("UpdateUsagePlan: %+v %v", upd, err)
	}

	// Paginators follow position.
	for i := range 3 {
		if _, err := agw.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("more" + string(rune('a'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	pages := apigateway.NewGetApiKeysPaginator(agw, &apigateway.GetApiKeysInput{Limit: aws.Int32(2)})
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("GetApiKeys page: %v", err)
		}
		for _, k := range p.Items {
			names = append(names, aws.ToString(k.Name))
		}
	}
	if len(names) != 4 {
		t.Fatalf("paged keys %v", names)
	}

	imp, err := agw.ImportApiKeys(ctx, &apigateway.ImportApiKeysInput{
		Format: types.ApiKeysFormatCsv, FailOnWarnings: true,
		Body: []byte("name,key,usageplanIds\nimported," + strings.Repeat("x", 30) + "," + aws.ToString(plan.Id) + "\n"),
	})
	if err != nil || len(imp.Ids) != 1 || len(imp.Warnings) != 0 {
		t.Fatalf("ImportApiKeys: %+v %v", imp, err)
	}

	acct, err := agw.GetAccount(ctx, &apigateway.GetAccountInput{})
	if err != nil || acct.ThrottleSettings.RateLimit != 10000 || acct.ThrottleSettings.BurstLimit != 5000 || aws.ToString(acct.ApiKeyVersion) != "4" {
		t.Fatalf("GetAccount: %+v %v", acct, err)
	}

	// Errors arrive as the SDK's typed errors.
	_, err = agw.GetUsagePlan(ctx, &apigateway.GetUsagePlanInput{UsagePlanId: aws.String("nope00")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) || aws.ToString(nf.Message) != msgPlanNotFound {
		t.Fatalf("GetUsagePlan unknown: %v", err)
	}
	_, err = agw.DeleteUsagePlan(ctx, &apigateway.DeleteUsagePlanInput{UsagePlanId: plan.Id})
	var br *types.BadRequestException
	if !errors.As(err, &br) || !strings.HasPrefix(aws.ToString(br.Message), "Cannot delete Usage Plan") {
		t.Fatalf("DeleteUsagePlan with stages: %v", err)
	}
	_, err = agw.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Value: key.Value})
	var cf *types.ConflictException
	if !errors.As(err, &cf) || aws.ToString(cf.Message) != "API Key already exists" {
		t.Fatalf("CreateApiKey duplicate: %v", err)
	}

	// Teardown as Terraform does it: detach the stages, then delete.
	if _, err := agw.UpdateUsagePlan(ctx, &apigateway.UpdateUsagePlanInput{UsagePlanId: plan.Id, PatchOperations: []types.PatchOperation{
		{Op: types.OpRemove, Path: aws.String("/apiStages"), Value: aws.String(aws.ToString(api.Id) + ":prod")},
	}}); err != nil {
		t.Fatalf("remove apiStages: %v", err)
	}
	if _, err := agw.DeleteUsagePlan(ctx, &apigateway.DeleteUsagePlanInput{UsagePlanId: plan.Id}); err != nil {
		t.Fatalf("DeleteUsagePlan: %v", err)
	}
	if _, err := agw.DeleteRestApi(ctx, &apigateway.DeleteRestApiInput{RestApiId: api.Id}); err != nil {
		t.Fatalf("DeleteRestApi: %v", err)
	}
}
