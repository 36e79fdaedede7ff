package admin

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/limiter"
	pb "github.com/tollgate/tollgate/proto"
)

// usageQuota is a plan's quota, read for usage math.
type usageQuota struct {
	ok bool
	limiter.Quota
}

func quotaOf(p *pb.UsagePlan) usageQuota {
	q := p.GetQuota()
	if q == nil {
		return usageQuota{}
	}
	quota, err := limiter.ParseQuota(q.GetPeriod(), int64(q.GetOffset()), q.GetLimit())
	if err != nil {
		return usageQuota{}
	}
	return usageQuota{ok: true, Quota: quota}
}

// keyUsage computes [used, remaining] for each day from start to end
// (inclusive, UTC midnights). used is the requests the ledger counts on
// that day. remaining is what the key had left at the end of that day in
// the quota period containing it: limit + that period's extension − the
// period's usage up to and including that day, never below 0. Without a
// quota, remaining is -1. l may be nil (no usage yet).
//
// Units the ledger settled (a node stopped holding them, so they count as
// spent) are in no day's used, but come off the remaining of every period
// that overlaps theirs, from its first day, as the ledger counts them.
func keyUsage(l *pb.KeyLedger, q usageQuota, start, end time.Time) [][2]int64 {
	daily := l.GetDaily()
	var out [][2]int64
	var curStart int64
	var sum int64
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		day := limiter.DayOf(d.Unix())
		used := daily[day]
		if !q.ok {
			out = append(out, [2]int64{used, -1})
			continue
		}
		ps, _ := q.Bounds(d.Unix())
		if ps != curStart || len(out) == 0 {
			// A new period (or the first day): count its earlier days.
			curStart = ps
			sum = 0
			_, pe := q.Bounds(d.Unix())
			period := limiter.Span{Start: ps, End: pe}
			for _, g := range l.GetSettled() {
				if period.Overlaps(limiter.Span{Start: g.Start, End: g.End}) {
					sum += g.Units
				}
			}
			for x := limiter.DayOf(ps); x < day; x++ {
				sum += daily[x]
			}
		}
		sum += used
		out = append(out, [2]int64{used, max(0, q.Limit+l.GetPeriodExtra()[ps]-sum)})
	}
	return out
}

type usageView struct {
	UsagePlanID string                `json:"usagePlanId"`
	StartDate   string                `json:"startDate"`
	EndDate     string                `json:"endDate"`
	Values      map[string][][2]int64 `json:"values"`
	Position    string                `json:"position,omitempty"`
}

// usageFormat decides the form of a usage answer: ?format= wins, then the
// first media type of Accept that names one.
func usageFormat(r *http.Request) (string, *apiError) {
	switch f := r.URL.Query().Get("format"); f {
	case "json", "csv", "ndjson":
		return f, nil
	case "":
	default:
		return "", badRequest("Invalid format %q: want json, csv or ndjson", truncate(f))
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			return "json", nil
		case "text/csv":
			return "csv", nil
		case "application/x-ndjson":
			return "ndjson", nil
		}
	}
	return "json", nil
}

// usageKeys lists the keys a usage report covers, by id: the keys attached
// to the plan and the keys that still have usage recorded in it (a key
// detached during a period is still billed for it).
func usageKeys(cfg *pb.Config, planID string, ledgers map[string]*pb.KeyLedger) []string {
	ids := map[string]bool{}
	for id := range cfg.GetPlanKeys()[planID].GetKeys() {
		ids[id] = true
	}
	for id := range ledgers {
		if cfg.GetApiKeys()[id] != nil {
			ids[id] = true
		}
	}
	return slices.Sorted(maps.Keys(ids))
}

func (s *Server) getUsage(w http.ResponseWriter, r *http.Request) *apiError {
	planID := r.PathValue("usageplan_id")
	q := r.URL.Query()
	start, e := parseDate("startDate", q.Get("startDate"))
	if e != nil {
		return e
	}
	end, e := parseDate("endDate", q.Get("endDate"))
	if e != nil {
		return e
	}
	if end.Before(start) {
		return badRequest("The endDate %s is before the startDate %s", q.Get("endDate"), q.Get("startDate"))
	}
	if end.Sub(start) > maxUsageDays*24*time.Hour {
		return badRequest("The dates are %d days apart: at most %d are allowed", int(end.Sub(start).Hours()/24), maxUsageDays)
	}
	format, e := usageFormat(r)
	if e != nil {
		return e
	}
	cfg := s.store.Config()
	plan := cfg.GetUsagePlans()[planID]
	if plan == nil {
		return notFound(msgPlanNotFound)
	}
	ledgers := map[string]*pb.KeyLedger{}
	for _, l := range s.store.KeyLedgers(planID) {
		ledgers[l.GetKeyId()] = l
	}
	ids := usageKeys(cfg, planID, ledgers)
	quota := quotaOf(plan)
	if format != "json" {
		// The export is the record of what was billable: a deleted key's
		// usage stays in it while usage is retained.
		for id := range ledgers {
			if cfg.GetDeletedApiKeys()[id] != nil {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
	}
	if keyID := q.Get("keyId"); keyID != "" {
		if slices.Contains(ids, keyID) {
			ids = []string{keyID}
		} else {
			ids = nil
		}
	}
	if format != "json" {
		if q.Has("position") || q.Has("limit") {
			return badRequest("The %s export is not paged: it has every key; drop position and limit", format)
		}
		s.writeUsageExport(w, format, cfg, plan, ids, ledgers, quota, start, end)
		return nil
	}
	pr, e := parsePage(q)
	if e != nil {
		return e
	}
	page, next := paginate(ids, func(id string) cursor { return cursor{0, id} }, pr)
	out := usageView{
		UsagePlanID: planID,
		StartDate:   start.Format(time.DateOnly),
		EndDate:     end.Format(time.DateOnly),
		Values:      make(map[string][][2]int64, len(page)),
		Position:    next,
	}
	for _, id := range page {
		out.Values[id] = keyUsage(ledgers[id], quota, start, end)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// usageRow is one line of a usage export.
type usageRow struct {
	KeyID      string `json:"keyId"`
	Name       string `json:"name"`
	CustomerID string `json:"customerId"`
	Date       string `json:"date"`
	Used       int64  `json:"used"`
	Remaining  int64  `json:"remaining"`
}

// csvSafe keeps a spreadsheet from reading a text cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) writeUsageExport(w http.ResponseWriter, format string, cfg *pb.Config, plan *pb.UsagePlan,
	ids []string, ledgers map[string]*pb.KeyLedger, quota usageQuota, start, end time.Time,
) {
	name := "usage-" + plan.GetId() + "-" + start.Format(time.DateOnly) + "-" + end.Format(time.DateOnly)
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.ndjson"`)
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	cw := csv.NewWriter(bw)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if format == "csv" {
		_ = cw.Write([]string{"keyId", "name", "customerId", "date", "used", "remaining"})
	}
	for _, id := range ids {
		name, customer := cfg.GetApiKeys()[id].GetName(), cfg.GetApiKeys()[id].GetCustomerId()
		if d := cfg.GetDeletedApiKeys()[id]; d != nil {
			name, customer = d.GetName(), d.GetCustomerId()
		}
		days := keyUsage(ledgers[id], quota, start, end)
		for i, v := range days {
			row := usageRow{
				KeyID:      id,
				Name:       name,
				CustomerID: customer,
				Date:       start.AddDate(0, 0, i).Format(time.DateOnly),
				Used:       v[0],
				Remaining:  v[1],
			}
			if format == "csv" {
				_ = cw.Write([]string{row.KeyID, csvSafe(row.Name), csvSafe(row.CustomerID), row.Date,
					strconv.FormatInt(row.Used, 10), strconv.FormatInt(row.Remaining, 10)})
			} else {
				_ = enc.Encode(row)
			}
		}
	}
	cw.Flush()
	_ = bw.Flush()
}

// updateUsage is UpdateUsage: PATCH /usageplans/{id}/keys/{keyId}/usage
// with replace /remaining sets the key's remaining quota for the current
// period. It answers with the usage of today.
func (s *Server) updateUsage(w http.ResponseWriter, r *http.Request) *apiError {
	planID, keyID := r.PathValue("usageplan_id"), r.PathValue("key_id")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	if len(ops) == 0 {
		return badRequest("UpdateUsage needs the patch operation replace /remaining")
	}
	var remaining int64
	for _, op := range ops {
		if op.Op != "replace" {
			return badPatchPath(op, nil)
		}
		if op.Path != "/remaining" {
			return badPatchPath(op, []string{"/remaining"})
		}
		n, e := patchInt(op, 0, limiter.MaxQuotaLimit)
		if e != nil {
			return e
		}
		remaining = n
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_SetRemaining{SetRemaining: &pb.SetRemaining{
		PlanId: planID, KeyId: keyID, Remaining: remaining,
	}}}); e != nil {
		return e
	}
	now := s.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var ledger *pb.KeyLedger
	for _, l := range s.store.KeyLedgers(planID) {
		if l.GetKeyId() == keyID {
			ledger = l
		}
	}
	out := usageView{
		UsagePlanID: planID,
		StartDate:   today.Format(time.DateOnly),
		EndDate:     today.Format(time.DateOnly),
		Values: map[string][][2]int64{
			keyID: keyUsage(ledger, quotaOf(s.store.Config().GetUsagePlans()[planID]), today, today),
		},
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
