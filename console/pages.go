package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The admin API's JSON shapes, as far as the pages read them.

type clusterStatus struct {
	NodeID       string `json:"nodeId"`
	Leader       string `json:"leader"`
	State        string `json:"state"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Members      []struct {
		ID       string `json:"id"`
		Gossip   string `json:"gossip"`
		Suffrage string `json:"suffrage"`
		Role     string `json:"role"`
		RaftAddr string `json:"raftAddr"`
	} `json:"members"`
}

type health struct {
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	CaughtUp     bool   `json:"caughtUp"`
	AppliedIndex uint64 `json:"appliedIndex"`
	TargetIndex  uint64 `json:"targetIndex"`
}

type restAPI struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type stage struct {
	StageName    string            `json:"stageName"`
	DeploymentID string            `json:"deploymentId"`
	Variables    map[string]string `json:"variables"`
}

type resource struct {
	Path            string `json:"path"`
	ResourceMethods map[string]struct {
		APIKeyRequired    bool `json:"apiKeyRequired"`
		MethodIntegration *struct {
			Type string `json:"type"`
			URI  string `json:"uri"`
		} `json:"methodIntegration"`
	} `json:"resourceMethods"`
}

type throttle struct {
	BurstLimit int64   `json:"burstLimit"`
	RateLimit  float64 `json:"rateLimit"`
}

type plan struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	APIStages   []struct {
		APIID string `json:"apiId"`
		Stage string `json:"stage"`
	} `json:"apiStages"`
	Throttle *throttle `json:"throttle"`
	Quota    *struct {
		Limit  int64  `json:"limit"`
		Offset int64  `json:"offset"`
		Period string `json:"period"`
	} `json:"quota"`
	Notifications *struct {
		WebhookURL string  `json:"webhookUrl"`
		Thresholds []int64 `json:"thresholds"`
	} `json:"quotaNotifications"`
}

// notice is one quota notification as the admin API lists it.
type notice struct {
	KeyID       string `json:"keyId"`
	PeriodStart string `json:"periodStart"`
	Threshold   int32  `json:"threshold"`
	Used        int64  `json:"used"`
	Limit       int64  `json:"limit"`
	Time        int64  `json:"time"`
	State       string `json:"state"`
	Attempts    int32  `json:"attempts"`
	Error       string `json:"error"`
}

// When is the notice's time for people.
func (n notice) When() string { return time.Unix(n.Time, 0).UTC().Format("2006-01-02 15:04:05 UTC") }

type apiKey struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	CustomerID  string `json:"customerId"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
	CreatedDate int64  `json:"createdDate"`
}

type planKey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type list[T any] struct {
	Item     []T    `json:"item"`
	Position string `json:"position"`
}

// listLimit is the page size the console asks for: the admin API's largest.
const listLimit = "500"

// ---- overview

type overviewData struct {
	Cluster *clusterStatus
	Health  health
	Rates   chart
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	var d overviewData
	var st clusterStatus
	// The cluster status needs a credential: it gates the page.
	if a := c.get(r, "/cluster", &st); a == nil {
		d.Cluster = &st
	} else if a.status != http.StatusNotFound {
		c.fail(w, r, a)
		return
	}
	h := c.call(r, http.MethodGet, "/healthz", nil, "", "application/json")
	if err := h.decode(&d.Health); err != nil {
		d.Health = health{Status: h.message()}
	}
	now := c.now()
	d.Rates = rateChart(now, c.rates.points(now))
	c.render(w, r, "overview", http.StatusOK, view{Title: "Overview", Nav: "overview", Data: d})
}

// ---- APIs and stages

type route struct {
	Method, Path, Integration string
	KeyRequired               bool
}

type apiData struct {
	API    restAPI
	Stages []stage
	Routes []route
}

func (c *Console) apisPage(w http.ResponseWriter, r *http.Request) {
	var apis list[restAPI]
	if a := c.get(r, "/restapis?limit="+listLimit, &apis); a != nil {
		c.fail(w, r, a)
		return
	}
	var out []apiData
	for _, api := range apis.Item {
		d := apiData{API: api}
		var stages list[stage]
		if a := c.get(r, "/restapis/"+url.PathEscape(api.ID)+"/stages", &stages); a != nil {
			c.fail(w, r, a)
			return
		}
		d.Stages = stages.Item
		var res list[resource]
		if a := c.get(r, "/restapis/"+url.PathEscape(api.ID)+"/resources?limit="+listLimit, &res); a != nil {
			c.fail(w, r, a)
			return
		}
		slices.SortFunc(res.Item, func(a, b resource) int { return strings.Compare(a.Path, b.Path) })
		for _, rs := range res.Item {
			for _, m := range sortedKeys(rs.ResourceMethods) {
				meth := rs.ResourceMethods[m]
				rt := route{Method: m, Path: rs.Path, KeyRequired: meth.APIKeyRequired}
				if in := meth.MethodIntegration; in != nil {
					rt.Integration = in.Type + " " + in.URI
				}
				d.Routes = append(d.Routes, rt)
			}
		}
		out = append(out, d)
	}
	c.render(w, r, "apis", http.StatusOK, view{Title: "APIs and stages", Nav: "apis", Data: out})
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ---- usage plans

type stageChoice struct{ APIID, APIName, Stage string }

type plansData struct {
	Plans  []plan
	Stages []stageChoice
}

func (c *Console) plansPage(w http.ResponseWriter, r *http.Request) {
	c.showPlans(w, r, http.StatusOK, "")
}

func (c *Console) showPlans(w http.ResponseWriter, r *http.Request, status int, msg string) {
	var d plansData
	var plans list[plan]
	if a := c.get(r, "/usageplans?limit="+listLimit, &plans); a != nil {
		c.fail(w, r, a)
		return
	}
	d.Plans = plans.Item
	var apis list[restAPI]
	if a := c.get(r, "/restapis?limit="+listLimit, &apis); a != nil {
		c.fail(w, r, a)
		return
	}
	for _, api := range apis.Item {
		var stages list[stage]
		if a := c.get(r, "/restapis/"+url.PathEscape(api.ID)+"/stages", &stages); a != nil {
			c.fail(w, r, a)
			return
		}
		for _, s := range stages.Item {
			d.Stages = append(d.Stages, stageChoice{APIID: api.ID, APIName: api.Name, Stage: s.StageName})
		}
	}
	c.render(w, r, "plans", status, view{Title: "Usage plans", Nav: "plans", Error: msg, Data: d})
}

// number is a form field as a JSON value: a number when it reads as one,
// else the text, so the admin API names the field and what it wants.
func number(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err == nil && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

func (c *Console) createPlan(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	f := r.PostForm
	body := map[string]any{"name": f.Get("name")}
	if d := f.Get("description"); d != "" {
		body["description"] = d
	}
	if rate, burst := f.Get("rateLimit"), f.Get("burstLimit"); rate != "" || burst != "" {
		t := map[string]any{}
		if rate != "" {
			t["rateLimit"] = number(rate)
		}
		if burst != "" {
			t["burstLimit"] = number(burst)
		}
		body["throttle"] = t
	}
	if limit, period := f.Get("quotaLimit"), f.Get("quotaPeriod"); limit != "" || period != "" {
		q := map[string]any{"period": period}
		if limit != "" {
			q["limit"] = number(limit)
		}
		body["quota"] = q
	}
	stages := []map[string]string{}
	for _, s := range f["stage"] {
		api, st, _ := strings.Cut(s, " ")
		stages = append(stages, map[string]string{"apiId": api, "stage": st})
	}
	body["apiStages"] = stages
	b, _ := json.Marshal(body) // maps of strings and raw numbers marshal
	a := c.call(r, http.MethodPost, "/usageplans", b, "application/json", "application/json")
	if !a.ok() {
		c.formFailed(w, r, a, c.showPlans)
		return
	}
	var p plan
	if err := a.decode(&p); err != nil {
		c.showPlans(w, r, http.StatusBadGateway, err.Error())
		return
	}
	seeOther(w, r, Prefix+"plans/"+url.PathEscape(p.ID))
}

// formFailed answers a form the admin API refused: the page again, with
// its message and the form's values.
func (c *Console) formFailed(w http.ResponseWriter, r *http.Request, a *answer, show func(http.ResponseWriter, *http.Request, int, string)) {
	if a.needsLogin() {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	show(w, r, a.status, a.message())
}

type planData struct {
	Plan    plan
	Keys    []planKey
	AllKeys []apiKey
	Notices []notice
}

func (c *Console) planPage(w http.ResponseWriter, r *http.Request) {
	c.showPlan(w, r, http.StatusOK, "")
}

func (c *Console) showPlan(w http.ResponseWriter, r *http.Request, status int, msg string) {
	id := url.PathEscape(r.PathValue("plan"))
	var d planData
	if a := c.get(r, "/usageplans/"+id, &d.Plan); a != nil {
		c.fail(w, r, a)
		return
	}
	var keys list[planKey]
	if a := c.get(r, "/usageplans/"+id+"/keys?limit="+listLimit, &keys); a != nil {
		c.fail(w, r, a)
		return
	}
	d.Keys = keys.Item
	var all list[apiKey]
	if a := c.get(r, "/apikeys?limit="+listLimit, &all); a != nil {
		c.fail(w, r, a)
		return
	}
	d.AllKeys = all.Item
	if d.Plan.Notifications != nil {
		var notices list[notice]
		if a := c.get(r, "/usageplans/"+id+"/notifications", &notices); a != nil {
			c.fail(w, r, a)
			return
		}
		d.Notices = notices.Item
	}
	c.render(w, r, "plan", status, view{Title: "Usage plan " + d.Plan.Name, Nav: "plans", Error: msg, Data: d})
}

func (c *Console) addPlanKey(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	id := r.PathValue("plan")
	body := map[string]string{"keyId": strings.TrimSpace(r.PostFormValue("keyId")), "keyType": "API_KEY"}
	if a := c.send(r, http.MethodPost, "/usageplans/"+url.PathEscape(id)+"/keys", body); a != nil {
		c.formFailed(w, r, a, c.showPlan)
		return
	}
	seeOther(w, r, Prefix+"plans/"+url.PathEscape(id))
}

func (c *Console) removePlanKey(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	id := r.PathValue("plan")
	a := c.call(r, http.MethodDelete, "/usageplans/"+url.PathEscape(id)+"/keys/"+url.PathEscape(r.PathValue("key")), nil, "", "application/json")
	if !a.ok() {
		c.formFailed(w, r, a, c.showPlan)
		return
	}
	seeOther(w, r, Prefix+"plans/"+url.PathEscape(id))
}
