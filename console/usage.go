package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxUsagePages bounds the pages of keys one usage page reads (500 keys
// each); the CSV export has every key.
const maxUsagePages = 20

type keyUsageRow struct {
	ID, Name  string
	Used      int64
	Remaining int64 // at the end of the range; -1: the plan has no quota
}

type usageData struct {
	Plans      []plan
	Plan       string // the plan shown
	Key        string // the key shown, or "" for every key of the plan
	Keys       []planKey
	From, To   string
	Chart      *chart
	Rows       []keyUsageRow
	More       bool // more keys than the page read
	ExportPath string
}

func (c *Console) usagePage(w http.ResponseWriter, r *http.Request) {
	c.showUsage(w, r, http.StatusOK, "")
}

// showUsage draws the usage of a plan, or of one of its keys, from one day
// to another (by default the week to today, UTC): a bar per day, and per
// key what it used and what remains of its quota.
func (c *Console) showUsage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	today := c.now().UTC()
	d := usageData{Plan: q.Get("plan"), Key: q.Get("key"), From: q.Get("from"), To: q.Get("to")}
	if d.To == "" {
		d.To = today.Format(time.DateOnly)
	}
	if d.From == "" {
		d.From = today.AddDate(0, 0, -6).Format(time.DateOnly)
	}
	var plans list[plan]
	if a := c.get(r, "/usageplans?limit="+listLimit, &plans); a != nil {
		c.fail(w, r, a)
		return
	}
	d.Plans = plans.Item
	if d.Plan == "" && len(d.Plans) > 0 {
		d.Plan = d.Plans[0].ID
	}
	if d.Plan != "" {
		if m := c.loadUsage(r, &d); m != nil {
			if m.needsLogin() {
				c.fail(w, r, m)
				return
			}
			if msg == "" {
				status, msg = m.status, m.message()
			}
		}
	}
	c.render(w, r, "usage", status, view{Title: "Usage", Nav: "usage", Error: msg, Data: d})
}

// loadUsage reads the plan's keys and usage into d; a refusal is the
// answer.
func (c *Console) loadUsage(r *http.Request, d *usageData) *answer {
	plan := url.PathEscape(d.Plan)
	var keys list[planKey]
	if a := c.get(r, "/usageplans/"+plan+"/keys?limit="+listLimit, &keys); a != nil {
		return a
	}
	d.Keys = keys.Item
	names := map[string]string{}
	for _, k := range keys.Item {
		names[k.ID] = k.Name
	}
	p := url.Values{"startDate": {d.From}, "endDate": {d.To}}
	if d.Key != "" {
		p.Set("keyId", d.Key)
	}
	d.ExportPath = Prefix + "usage/export?" + url.Values{"plan": {d.Plan}, "key": {d.Key}, "from": {d.From}, "to": {d.To}}.Encode()
	p.Set("limit", listLimit)
	var start time.Time
	var daily []int64
	for range maxUsagePages {
		var u struct {
			StartDate string                `json:"startDate"`
			Values    map[string][][2]int64 `json:"values"`
			Position  string                `json:"position"`
		}
		if a := c.get(r, "/usageplans/"+plan+"/usage?"+p.Encode(), &u); a != nil {
			return a
		}
		start, _ = time.Parse(time.DateOnly, u.StartDate) // the admin API's own date
		for _, id := range sortedKeys(u.Values) {
			days := u.Values[id]
			row := keyUsageRow{ID: id, Name: names[id], Remaining: -1}
			if daily == nil {
				daily = make([]int64, len(days))
			}
			for i, v := range days {
				row.Used += v[0]
				if i < len(daily) {
					daily[i] += v[0]
				}
				row.Remaining = v[1]
			}
			d.Rows = append(d.Rows, row)
		}
		d.More = u.Position != ""
		if !d.More {
			break
		}
		p.Set("position", u.Position)
	}
	if daily == nil {
		// No key has usage in the range: a bar of 0 a day all the same.
		if end, err := time.Parse(time.DateOnly, d.To); err == nil && !end.Before(start) {
			daily = make([]int64, int(end.Sub(start).Hours()/24)+1)
		}
	}
	ch := usageChart(start, daily)
	d.Chart = &ch
	return nil
}

// extendUsage is the extension dialog: UpdateUsage, replace /remaining.
func (c *Console) extendUsage(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	f := r.PostForm
	body := map[string]any{"patchOperations": []map[string]string{{"op": "replace", "path": "/remaining", "value": strings.TrimSpace(f.Get("remaining"))}}}
	path := "/usageplans/" + url.PathEscape(f.Get("plan")) + "/keys/" + url.PathEscape(f.Get("extendKey")) + "/usage"
	if a := c.send(r, http.MethodPatch, path, body); a != nil {
		c.formFailed(w, r, a, c.showUsage)
		return
	}
	seeOther(w, r, Prefix+"usage?"+url.Values{"plan": {f.Get("plan")}, "key": {f.Get("key")}, "from": {f.Get("from")}, "to": {f.Get("to")}}.Encode())
}

// exportUsage is the CSV export button: the admin API's CSV export, as it
// answers it.
func (c *Console) exportUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := url.Values{"startDate": {q.Get("from")}, "endDate": {q.Get("to")}}
	if k := q.Get("key"); k != "" {
		p.Set("keyId", k)
	}
	a := c.call(r, http.MethodGet, "/usageplans/"+url.PathEscape(q.Get("plan"))+"/usage?"+p.Encode(), nil, "", "text/csv")
	if !a.ok() {
		c.fail(w, r, a)
		return
	}
	for _, h := range []string{"Content-Type", "Content-Disposition"} {
		w.Header().Set(h, a.header.Get(h))
	}
	_, _ = w.Write(a.body)
}
