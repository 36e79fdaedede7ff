package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// usageJSON is GetUsage's JSON answer: per key, [used, remaining] a day.
type usageJSON struct {
	UsagePlanID string                `json:"usagePlanId"`
	StartDate   string                `json:"startDate"`
	EndDate     string                `json:"endDate"`
	Values      map[string][][2]int64 `json:"values"`
	Position    string                `json:"position,omitempty"`
}

// usageRowJSON is one line of the usage export (format=ndjson).
type usageRowJSON struct {
	KeyID      string `json:"keyId"`
	Name       string `json:"name"`
	CustomerID string `json:"customerId"`
	Date       string `json:"date"`
	Used       int64  `json:"used"`
	Remaining  int64  `json:"remaining"`
}

func remainingText(n int64) string {
	if n < 0 {
		return "no quota"
	}
	return strconv.FormatInt(n, 10)
}

func usageCmd() *cobra.Command {
	var plan, from, to, key string
	var asCSV bool
	c, f := newClientCmd("usage --plan PLAN_ID [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--key KEY_ID] [--csv]",
		"Show a usage plan's usage per key and day (requests used, quota remaining), or export it as CSV")
	c.Args = cobra.NoArgs
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if plan == "" {
			return fmt.Errorf("--plan is required")
		}
		today := time.Now().UTC().Format(time.DateOnly)
		if from == "" {
			from = today
		}
		if to == "" {
			to = from
		}
		cl, err := f.client(cmd)
		if err != nil {
			return err
		}
		q := url.Values{"startDate": {from}, "endDate": {to}}
		if key != "" {
			q.Set("keyId", key)
		}
		path := "/usageplans/" + esc(plan) + "/usage"
		out := cmd.OutOrStdout()
		if asCSV {
			q.Set("format", "csv")
			b, err := cl.send(cmd.Context(), request{method: "GET", path: path + "?" + q.Encode()})
			if err != nil {
				return err
			}
			_, err = out.Write(b)
			return err
		}
		if f.output == "json" {
			all := usageJSON{Values: map[string][][2]int64{}}
			for range maxPages {
				var page usageJSON
				if err := cl.do(cmd.Context(), "GET", path+"?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				all.UsagePlanID, all.StartDate, all.EndDate = page.UsagePlanID, page.StartDate, page.EndDate
				for k, v := range page.Values {
					all.Values[k] = v
				}
				if page.Position == "" || page.Position == q.Get("position") {
					return printJSON(out, all)
				}
				q.Set("position", page.Position)
			}
			return fmt.Errorf("GET %s: more than %d pages", path, maxPages)
		}
		q.Set("format", "ndjson")
		b, err := cl.send(cmd.Context(), request{method: "GET", path: path + "?" + q.Encode()})
		if err != nil {
			return err
		}
		var rows []usageRowJSON
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r usageRowJSON
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("the answer is not the usage export expected: %w", err)
			}
			rows = append(rows, r)
		}
		if err := sc.Err(); err != nil {
			return err
		}
		return f.show(out, nil, func(w io.Writer) {
			fmt.Fprintln(w, "KEY\tNAME\tCUSTOMER\tDATE\tUSED\tREMAINING")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", r.KeyID, orDash(r.Name), orDash(r.CustomerID), r.Date, r.Used, remainingText(r.Remaining))
			}
		})
	}
	c.Flags().StringVar(&plan, "plan", "", "the usage plan (required)")
	c.Flags().StringVar(&from, "from", "", "the first day, YYYY-MM-DD (UTC; default today)")
	c.Flags().StringVar(&to, "to", "", "the last day, YYYY-MM-DD (default --from)")
	c.Flags().StringVar(&key, "key", "", "only this key")
	c.Flags().BoolVar(&asCSV, "csv", false, "print the CSV billing export (keyId,name,customerId,date,used,remaining)")

	var xPlan, xKey string
	var by int64
	extend := &cobra.Command{
		Use:   "extend --plan PLAN_ID --key KEY_ID --by N",
		Short: "Give a key N more requests in its current quota period (UpdateUsage; a negative N takes some away)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if xPlan == "" || xKey == "" || !cmd.Flags().Changed("by") {
				return fmt.Errorf("--plan, --key and --by are required")
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			// The remaining quota today, as the node counts it; UpdateUsage
			// then sets it to that plus N.
			today := time.Now().UTC().Format(time.DateOnly)
			var cur usageJSON
			q := url.Values{"startDate": {today}, "endDate": {today}, "keyId": {xKey}}
			if err := cl.do(cmd.Context(), "GET", "/usageplans/"+esc(xPlan)+"/usage?"+q.Encode(), nil, &cur); err != nil {
				return err
			}
			days := cur.Values[xKey]
			if len(days) == 0 {
				return fmt.Errorf("key %s is not in usage plan %s", xKey, xPlan)
			}
			remaining := days[len(days)-1][1]
			if remaining < 0 {
				return fmt.Errorf("usage plan %s has no quota to extend", xPlan)
			}
			target := remaining + by
			if target < 0 {
				return fmt.Errorf("--by %d: the key has %d remaining, it cannot go below 0", by, remaining)
			}
			var after usageJSON
			raw, err := cl.call(cmd.Context(), "PATCH", "/usageplans/"+esc(xPlan)+"/keys/"+esc(xKey)+"/usage",
				map[string]any{"patchOperations": []patchOp{{Op: "replace", Path: "/remaining", Value: strconv.FormatInt(target, 10)}}}, &after)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			now := target
			if d := after.Values[xKey]; len(d) > 0 {
				now = d[len(d)-1][1]
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "key %s in plan %s: %d remaining, was %d\n", xKey, xPlan, now, remaining)
			return err
		},
	}
	extend.Flags().StringVar(&xPlan, "plan", "", "the usage plan (required)")
	extend.Flags().StringVar(&xKey, "key", "", "the API key (required)")
	extend.Flags().Int64Var(&by, "by", 0, "how many requests to add to what remains (required)")
	c.AddCommand(extend)
	return c
}
