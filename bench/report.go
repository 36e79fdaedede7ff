package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// WriteText prints the report as a table of figures.
func (r *Report) WriteText(w io.Writer) error {
	perKey := func(d int64, n int) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%d B", d/int64(n))
	}
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	admitted := r.One.Admitted + r.Spread2.Admitted
	lines := [][2]string{
		{"keys imported", fmt.Sprintf("%d (%d per call)", r.Keys, r.ImportBatch)},
		{"import time", r.Import.Round(time.Millisecond).String()},
		{"resident memory per idle key", perKey(r.RSSIdle-r.RSSBase, r.Keys) + fmt.Sprintf(" (%s → %s)", mb(r.RSSBase), mb(r.RSSIdle))},
		{"heap per idle key", perKey(r.HeapIdle-r.HeapBase, r.Keys) + fmt.Sprintf(" (%s → %s)", mb(r.HeapBase), mb(r.HeapIdle))},
		{"resident memory per active key", perKey(r.RSSActive-r.RSSIdle, r.Active) + fmt.Sprintf(" (%d active, %s)", r.Active, mb(r.RSSActive))},
		{"heap per active key", perKey(r.HeapAct-r.HeapIdle, r.Active) + fmt.Sprintf(" (%s)", mb(r.HeapAct))},
		{"GetApiKeys first page (limit 500)", ms(r.FirstPage)},
		{"req/s, one key", fmt.Sprintf("%.0f (p50 %s, p99 %s)%s", r.One.rate(), ms(r.One.P50), ms(r.One.P99), r.One.refusals())},
		{fmt.Sprintf("req/s, %d keys %s", r.Active, r.Spread), fmt.Sprintf("%.0f (p50 %s, p99 %s)%s", r.Spread2.rate(), ms(r.Spread2.P50), ms(r.Spread2.P99), r.Spread2.refusals())},
		{"ratio, many keys vs one", fmt.Sprintf("%.2f×", r.Spread2.rate()/max(r.One.rate(), 1e-9))},
		{"log bytes per admitted request", fmt.Sprintf("%.1f (raft.db +%s over %d requests)", float64(r.LogBytes)/float64(max(admitted, 1)), mb(r.LogBytes), admitted)},
		{"data dir after traffic", mb(r.DataDir)},
		{"snapshot on stop", fmt.Sprintf("%s, %s", ms(r.SnapshotTook), mb(r.SnapshotBytes))},
		{"restart to first admitted request", fmt.Sprintf("%s (stop %s)", r.Restart.Round(time.Millisecond), r.RestartStop.Round(time.Millisecond))},
		{"keys admitted after restart (sample)", fmt.Sprintf("%d of %d", r.RestartKeysAdmitted, r.RestartSample)},
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-38s %s\n", l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

func (p phase) refusals() string {
	s := ""
	for _, st := range slices.Sorted(maps.Keys(p.Other)) {
		s += fmt.Sprintf(", %d× %d", p.Other[st], st)
	}
	if p.Errors > 0 {
		s += fmt.Sprintf(", %d errors", p.Errors)
	}
	return s
}
