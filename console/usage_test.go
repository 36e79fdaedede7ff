package console

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var barRE = regexp.MustCompile(`<rect class="bar" x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)" data-date="([^"]*)" data-value="(\d+)">`)

// bars reads a usage chart's bars: date -> (value, height).
func bars(t *testing.T, body string) map[string][2]float64 {
	t.Helper()
	out := map[string][2]float64{}
	for _, m := range barRE.FindAllStringSubmatch(body, -1) {
		h, _ := strconv.ParseFloat(m[1], 64)
		v, _ := strconv.ParseFloat(m[3], 64)
		out[m[2]] = [2]float64{v, h}
	}
	return out
}

// TestConsoleUsage: the usage page draws a bar a day for any range, per
// plan or per key, shows what remains of each key's quota, exports the
// admin API's CSV, and its extension dialog sets the remaining quota.
func TestConsoleUsage(t *testing.T) {
	e := newEnv(t)
	plan := e.adminJSON("POST", "/usageplans", "", map[string]any{"name": "gold", "quota": map[string]any{"limit": 100, "period": "DAY"}}, 201)["id"].(string)
	k1 := e.adminJSON("POST", "/apikeys", "", map[string]any{"name": "acme", "enabled": true}, 201)["id"].(string)
	k2 := e.adminJSON("POST", "/apikeys", "", map[string]any{"name": "beta", "enabled": true}, 201)["id"].(string)
	for _, k := range []string{k1, k2} {
		e.adminJSON("POST", "/usageplans/"+plan+"/keys", "", map[string]any{"keyId": k, "keyType": "API_KEY"}, 201)
	}
	today := testNow
	e.report(plan, k1, today, 7)
	e.report(plan, k2, today, 3)
	e.report(plan, k1, today.AddDate(0, 0, -2), 40)
	b := e.browser()

	// Default: the week to today, every key.
	p := b.get(Prefix + "usage")
	got := bars(t, p.body)
	if len(got) != 7 {
		t.Fatalf("default range: %d bars, want 7: %v", len(got), got)
	}
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }
	if got[day(0)][0] != 10 || got[day(-2)][0] != 40 || got[day(-1)][0] != 0 {
		t.Fatalf("bars: %v", got)
	}
	// Heights are proportional on an axis topped at 50 (40 rounded up).
	if h := got[day(-2)][1]; math.Abs(h-plotH*40/50) > 0.01 || math.Abs(got[day(0)][1]-plotH*10/50) > 0.01 {
		t.Fatalf("heights: %v", got)
	}
	if !strings.Contains(p.body, `<b id="usage-total">50</b>`) {
		t.Fatal("total is not 50")
	}
	// Remaining at the end of the range: today's quota less today's use.
	for key, want := range map[string]string{k1: "93", k2: "97"} {
		if !regexp.MustCompile(`(?s)data-key="` + key + `">.*?<td class="remaining">` + want + `</td>`).MatchString(p.body) {
			t.Fatalf("remaining of %s is not %s:\n%s", key, want, p.body)
		}
	}

	// One key, any range.
	q := url.Values{"plan": {plan}, "key": {k1}, "from": {day(-10)}, "to": {day(0)}}
	p = b.get(Prefix + "usage?" + q.Encode())
	got = bars(t, p.body)
	if len(got) != 11 || got[day(0)][0] != 7 || got[day(-2)][0] != 40 || strings.Contains(p.body, `data-key="`+k2+`"`) {
		t.Fatalf("key %s over 11 days: %v", k1, got)
	}

	// Bad dates: the admin API's message, no chart.
	code, direct := e.adminCall("GET", "/usageplans/"+plan+"/usage?startDate="+day(0)+"&endDate="+day(-3), "", "", "")
	p = b.get(Prefix + "usage?" + url.Values{"plan": {plan}, "from": {day(0)}, "to": {day(-3)}}.Encode())
	if p.status != code || p.errorText() != adminMessage(t, direct) || len(bars(t, p.body)) != 0 {
		t.Fatalf("reversed dates: %d %q, want %d %q", p.status, p.errorText(), code, adminMessage(t, direct))
	}

	// The CSV export is the admin API's.
	code, direct = e.adminCall("GET", "/usageplans/"+plan+"/usage?format=csv&startDate="+day(-6)+"&endDate="+day(0), "", "", "")
	p = b.get(Prefix + "usage/export?" + url.Values{"plan": {plan}, "from": {day(-6)}, "to": {day(0)}}.Encode())
	if code != 200 || p.status != 200 || p.body != string(direct) || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(p.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v\n%s\nwant\n%s", p.status, p.header, p.body, direct)
	}
	if !strings.Contains(p.body, k1+",acme,,"+day(-2)+",40,") {
		t.Fatalf("export lacks the day of 40:\n%s", p.body)
	}
	if p := b.get(Prefix + "usage/export?plan=nope&from=" + day(0) + "&to=" + day(0)); p.status != 404 {
		t.Fatalf("export of an unknown plan: %d", p.status)
	}

	// The extension dialog: UpdateUsage.
	p = b.post(Prefix+"usage/extend", url.Values{"plan": {plan}, "extendKey": {k1}, "remaining": {"500"}, "from": {day(-6)}, "to": {day(0)}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "plan="+plan) {
		t.Fatalf("extend: %d %q %q", p.status, p.location(), p.errorText())
	}
	p = b.get(p.location())
	if !regexp.MustCompile(`(?s)data-key="` + k1 + `">.*?<td class="remaining">500</td>`).MatchString(p.body) {
		t.Fatalf("remaining after the extension is not 500:\n%s", p.body)
	}
}

// TestRates: the overview's rates are the data plane's answers per second
// between samples, refused ones (throttle, quota) apart; a counter that
// went down starts afresh; the ring keeps the last hour.
func TestRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests}, []string{"code"})
	thr := prometheus.NewCounter(prometheus.CounterOpts{Name: metricThrottled})
	quo := prometheus.NewCounter(prometheus.CounterOpts{Name: metricQuota})
	reg.MustRegister(req, thr, quo)
	r := newRates(reg, 10*time.Second)
	t0 := testNow
	r.sample(t0)
	if n := len(r.points(t0)); n != 0 {
		t.Fatalf("one sample makes %d points", n)
	}
	req.WithLabelValues("200").Add(80)
	req.WithLabelValues("429").Add(20)
	thr.Add(15)
	quo.Add(5)
	r.sample(t0.Add(10 * time.Second))
	pts := r.points(t0.Add(10 * time.Second))
	if len(pts) != 1 || pts[0].Admitted != 8 || pts[0].Refused != 2 {
		t.Fatalf("points: %+v, want admitted 8/s, refused 2/s", pts)
	}
	// A restarted registry: no negative rate.
	r2 := newRates(prometheus.NewRegistry(), 10*time.Second)
	r2.last = &counts{at: t0, total: 1000}
	r2.sample(t0.Add(10 * time.Second))
	if len(r2.points(t0.Add(10*time.Second))) != 0 {
		t.Fatal("a counter that went down made a point")
	}
	// Two hours of samples: the ring holds the last hour, oldest first.
	for i := 2; i <= 720; i++ {
		req.WithLabelValues("200").Add(10)
		r.sample(t0.Add(time.Duration(i) * 10 * time.Second))
	}
	end := t0.Add(7200 * time.Second)
	pts = r.points(end)
	if len(pts) != 360 || !pts[0].At.Equal(end.Add(-3590*time.Second)) || !pts[359].At.Equal(end) || pts[359].Admitted != 1 {
		t.Fatalf("ring: %d points from %v to %v", len(pts), pts[0].At, pts[len(pts)-1].At)
	}
	// The chart puts the last point at "now", on the right edge.
	c := rateChart(end, pts)
	if !strings.HasSuffix(c.Lines[0].Points, "708.0,"+strconv.FormatFloat(c.Bottom-plotH*1/1, 'f', 1, 64)) || c.Lines[0].Last != "1" {
		t.Fatalf("chart: last point of %q, last %q", c.Lines[0].Points[max(0, len(c.Lines[0].Points)-30):], c.Lines[0].Last)
	}
}

// TestConsoleStartClose: the sampler runs until Close, which also works
// without Start.
func TestConsoleStartClose(t *testing.T) {
	c, err := New(Config{API: http.NotFoundHandler(), Gatherer: prometheus.NewRegistry(), SampleEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	c.Close()
	c.Close()
	idle, err := New(Config{API: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	idle.Close()
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without an API handler succeeded")
	}
}

func TestNiceMax(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 1, 1: 1, 3: 5, 7: 10, 40: 50, 120: 200, 1000: 1000, 1001: 2000, math.NaN(): 1} {
		if got := niceMax(in); got != want {
			t.Errorf("niceMax(%v) = %v, want %v", in, got, want)
		}
	}
}
