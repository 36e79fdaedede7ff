package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// planJSON is a usage plan as the admin API shows it.
type planJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	APIStages   []struct {
		APIID string `json:"apiId"`
		Stage string `json:"stage"`
	} `json:"apiStages"`
	Throttle *struct {
		BurstLimit int64   `json:"burstLimit"`
		RateLimit  float64 `json:"rateLimit"`
	} `json:"throttle"`
	Quota *struct {
		Limit  int64  `json:"limit"`
		Offset int64  `json:"offset"`
		Period string `json:"period"`
	} `json:"quota"`
}

func (p planJSON) throttle() string {
	if p.Throttle == nil {
		return "-"
	}
	return fmt.Sprintf("%s/s burst %d", formatFloat(p.Throttle.RateLimit), p.Throttle.BurstLimit)
}

func (p planJSON) quota() string {
	if p.Quota == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%s", p.Quota.Limit, p.Quota.Period)
}

func (p planJSON) stages() string {
	var s []string
	for _, st := range p.APIStages {
		s = append(s, st.APIID+":"+st.Stage)
	}
	return orDash(strings.Join(s, ","))
}

func planRows(plans []planJSON) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tTHROTTLE\tQUOTA\tSTAGES")
		for _, p := range plans {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.ID, orDash(p.Name), p.throttle(), p.quota(), p.stages())
		}
	}
}

// planFlags are the settings plans create and plans update take.
type planFlags struct {
	name, description           string
	rate                        float64
	burst                       int64
	quotaLimit, quotaOffset     int64
	quotaPeriod                 string
	stages, addStages, rmStages []string
}

func (pf *planFlags) register(c *cobra.Command, create bool) {
	fs := c.Flags()
	fs.StringVar(&pf.name, "name", "", "the plan's name")
	fs.StringVar(&pf.description, "description", "", "the plan's description")
	fs.Float64Var(&pf.rate, "rate", 0, "throttle: requests per second (steady state)")
	fs.Int64Var(&pf.burst, "burst", 0, "throttle: burst (bucket size)")
	fs.Int64Var(&pf.quotaLimit, "quota-limit", 0, "quota: requests per period")
	fs.StringVar(&pf.quotaPeriod, "quota-period", "", "quota: DAY, WEEK or MONTH")
	fs.Int64Var(&pf.quotaOffset, "quota-offset", 0, "quota: the day the period starts on")
	if create {
		fs.StringSliceVar(&pf.stages, "stage", nil, "an API stage the plan covers, API_ID:STAGE (repeat, or comma-separated)")
		return
	}
	fs.StringSliceVar(&pf.addStages, "add-stage", nil, "add an API stage, API_ID:STAGE")
	fs.StringSliceVar(&pf.rmStages, "remove-stage", nil, "remove an API stage, API_ID:STAGE")
}

// createBody is CreateUsagePlan's body from the flags given.
func (pf *planFlags) createBody(c *cobra.Command) (map[string]any, error) {
	fs := c.Flags()
	body := map[string]any{"name": pf.name}
	if pf.description != "" {
		body["description"] = pf.description
	}
	if fs.Changed("rate") || fs.Changed("burst") {
		body["throttle"] = map[string]any{"rateLimit": pf.rate, "burstLimit": pf.burst}
	}
	if fs.Changed("quota-limit") || fs.Changed("quota-period") || fs.Changed("quota-offset") {
		body["quota"] = map[string]any{"limit": pf.quotaLimit, "period": strings.ToUpper(pf.quotaPeriod), "offset": pf.quotaOffset}
	}
	var stages []map[string]string
	for _, s := range pf.stages {
		api, stage, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("--stage %q: want API_ID:STAGE", s)
		}
		stages = append(stages, map[string]string{"apiId": api, "stage": stage})
	}
	if len(stages) > 0 {
		body["apiStages"] = stages
	}
	return body, nil
}

// patchOps are UpdateUsagePlan's operations for the flags given.
func (pf *planFlags) patchOps(c *cobra.Command) []patchOp {
	fs := c.Flags()
	var ops []patchOp
	set := func(flag, path, value string) {
		if fs.Changed(flag) {
			ops = append(ops, patchOp{Op: "replace", Path: path, Value: value})
		}
	}
	set("name", "/name", pf.name)
	set("description", "/description", pf.description)
	set("rate", "/throttle/rateLimit", formatFloat(pf.rate))
	set("burst", "/throttle/burstLimit", strconv.FormatInt(pf.burst, 10))
	set("quota-limit", "/quota/limit", strconv.FormatInt(pf.quotaLimit, 10))
	set("quota-period", "/quota/period", strings.ToUpper(pf.quotaPeriod))
	set("quota-offset", "/quota/offset", strconv.FormatInt(pf.quotaOffset, 10))
	for _, s := range pf.addStages {
		ops = append(ops, patchOp{Op: "add", Path: "/apiStages", Value: s})
	}
	for _, s := range pf.rmStages {
		ops = append(ops, patchOp{Op: "remove", Path: "/apiStages", Value: s})
	}
	return ops
}

func plansCmd() *cobra.Command {
	c, f := newClientCmd("plans", "List, show, create, change and delete usage plans, and the keys in them")
	c.Aliases = []string{"plan"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the usage plans",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			items, err := listAll(cmd.Context(), cl, "/usageplans", nil)
			if err != nil {
				return err
			}
			plans, err := decodeItems[planJSON](items)
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), items, planRows(plans))
		},
	}
	get := &cobra.Command{
		Use:   "get PLAN_ID",
		Short: "Show a usage plan",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			return showPlan(cmd, f, cl, "GET", "/usageplans/"+esc(args[0]), nil)
		},
	}
	var cf planFlags
	create := &cobra.Command{
		Use:   "create --name NAME [--rate R --burst B] [--quota-limit N --quota-period DAY] [--stage API:STAGE]",
		Short: "Create a usage plan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := cf.createBody(cmd)
			if err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			return showPlan(cmd, f, cl, "POST", "/usageplans", body)
		},
	}
	cf.register(create, true)
	var uf planFlags
	update := &cobra.Command{
		Use:   "update PLAN_ID [--name ...] [--rate R] [--burst B] [--quota-limit N] [--add-stage API:STAGE] ...",
		Short: "Change a usage plan: each flag given becomes one patch operation, applied together",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops := uf.patchOps(cmd)
			if len(ops) == 0 {
				return fmt.Errorf("nothing to change: give at least one setting (see --help)")
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			return showPlan(cmd, f, cl, "PATCH", "/usageplans/"+esc(args[0]), map[string]any{"patchOperations": ops})
		},
	}
	uf.register(update, false)
	del := &cobra.Command{
		Use:   "delete PLAN_ID",
		Short: "Delete a usage plan",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", "/usageplans/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			return f.done(cmd.OutOrStdout(), "deleted plan", args[0])
		},
	}
	addKey := &cobra.Command{
		Use:   "add-key PLAN_ID KEY_ID",
		Short: "Put an API key in a usage plan",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "POST", "/usageplans/"+esc(args[0])+"/keys", map[string]string{"keyId": args[1], "keyType": "API_KEY"}, nil); err != nil {
				return err
			}
			return f.done(cmd.OutOrStdout(), "added to plan "+args[0]+": key", args[1])
		},
	}
	removeKey := &cobra.Command{
		Use:   "remove-key PLAN_ID KEY_ID",
		Short: "Take an API key out of a usage plan",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", "/usageplans/"+esc(args[0])+"/keys/"+esc(args[1]), nil, nil); err != nil {
				return err
			}
			return f.done(cmd.OutOrStdout(), "removed from plan "+args[0]+": key", args[1])
		},
	}
	c.AddCommand(list, get, create, update, del, addKey, removeKey)
	return c
}

// showPlan sends a request that answers a plan and prints it.
func showPlan(cmd *cobra.Command, f *clientFlags, cl *adminClient, method, path string, body any) error {
	var p planJSON
	raw, err := cl.call(cmd.Context(), method, path, body, &p)
	if err != nil {
		return err
	}
	return f.show(cmd.OutOrStdout(), raw, planRows([]planJSON{p}))
}
