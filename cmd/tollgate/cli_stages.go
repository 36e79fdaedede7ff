package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// stageJSON is a stage as the admin API shows it.
type stageJSON struct {
	StageName      string            `json:"stageName"`
	DeploymentID   string            `json:"deploymentId"`
	Description    string            `json:"description"`
	Variables      map[string]string `json:"variables"`
	APIKeyRequired bool              `json:"apiKeyRequired"`
	CreatedDate    int64             `json:"createdDate"`
}

func stageRows(stages []stageJSON) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintln(w, "STAGE\tDEPLOYMENT\tKEY REQUIRED\tVARIABLES")
		for _, s := range stages {
			var vars []string
			for _, k := range slices.Sorted(maps.Keys(s.Variables)) {
				vars = append(vars, k+"="+s.Variables[k])
			}
			fmt.Fprintf(w, "%s\t%s\t%t\t%s\n", s.StageName, orDash(s.DeploymentID), s.APIKeyRequired, orDash(strings.Join(vars, " ")))
		}
	}
}

func stagesCmd() *cobra.Command {
	c, f := newClientCmd("stages", "List, show, deploy, change and delete an API's stages")
	c.Aliases = []string{"stage"}
	var api string
	c.PersistentFlags().StringVar(&api, "api", "", "the REST API's id (required)")
	needAPI := func() error {
		if api == "" {
			return fmt.Errorf("--api is required")
		}
		return nil
	}
	base := func() string { return "/restapis/" + esc(api) }

	list := &cobra.Command{
		Use:   "list --api API_ID",
		Short: "List an API's stages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needAPI(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Item []stageJSON `json:"item"`
			}
			raw, err := cl.call(cmd.Context(), "GET", base()+"/stages", nil, &out)
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), raw, stageRows(out.Item))
		},
	}
	showStage := func(cmd *cobra.Command, method, path string, body any) error {
		cl, err := f.client(cmd)
		if err != nil {
			return err
		}
		var s stageJSON
		raw, err := cl.call(cmd.Context(), method, path, body, &s)
		if err != nil {
			return err
		}
		return f.show(cmd.OutOrStdout(), raw, stageRows([]stageJSON{s}))
	}
	get := &cobra.Command{
		Use:   "get --api API_ID STAGE",
		Short: "Show a stage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needAPI(); err != nil {
				return err
			}
			return showStage(cmd, "GET", base()+"/stages/"+esc(args[0]), nil)
		},
	}

	var vars []string
	var description string
	deploy := &cobra.Command{
		Use:   "deploy --api API_ID STAGE [--var url=http://upstream] [--description D]",
		Short: "Deploy the API to a stage, creating the stage or moving it to the new deployment (CreateDeployment)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needAPI(); err != nil {
				return err
			}
			v, err := parseVars(vars)
			if err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"stageName": args[0]}
			if v != nil {
				body["variables"] = v
			}
			if description != "" {
				body["description"] = description
			}
			var dep struct {
				ID string `json:"id"`
			}
			raw, err := cl.call(cmd.Context(), "POST", base()+"/deployments", body, &dep)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deployed %s to stage %s: deployment %s\n", api, args[0], dep.ID)
			return err
		},
	}
	deploy.Flags().StringArrayVar(&vars, "var", nil, "a stage variable name=value (repeat); url is the upstream base URL")
	deploy.Flags().StringVar(&description, "description", "", "the deployment's description")

	var setVars, rmVars []string
	var uDescription, uDeployment string
	var keyRequired bool
	update := &cobra.Command{
		Use:   "update --api API_ID STAGE [--var name=value] [--remove-var name] [--description D] [--deployment ID] [--key-required=true|false]",
		Short: "Change a stage: each flag given becomes one patch operation, applied together",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needAPI(); err != nil {
				return err
			}
			v, err := parseVars(setVars)
			if err != nil {
				return err
			}
			var ops []patchOp
			for _, k := range slices.Sorted(maps.Keys(v)) {
				ops = append(ops, patchOp{Op: "replace", Path: "/variables/" + k, Value: v[k]})
			}
			for _, k := range rmVars {
				ops = append(ops, patchOp{Op: "remove", Path: "/variables/" + k})
			}
			fs := cmd.Flags()
			if fs.Changed("description") {
				ops = append(ops, patchOp{Op: "replace", Path: "/description", Value: uDescription})
			}
			if fs.Changed("deployment") {
				ops = append(ops, patchOp{Op: "replace", Path: "/deploymentId", Value: uDeployment})
			}
			if fs.Changed("key-required") {
				ops = append(ops, patchOp{Op: "replace", Path: "/apiKeyRequired", Value: fmt.Sprint(keyRequired)})
			}
			if len(ops) == 0 {
				return fmt.Errorf("nothing to change: give at least one setting (see --help)")
			}
			return showStage(cmd, "PATCH", base()+"/stages/"+esc(args[0]), map[string]any{"patchOperations": ops})
		},
	}
	update.Flags().StringArrayVar(&setVars, "var", nil, "set a stage variable name=value (repeat)")
	update.Flags().StringArrayVar(&rmVars, "remove-var", nil, "remove a stage variable (repeat)")
	update.Flags().StringVar(&uDescription, "description", "", "the stage's description")
	update.Flags().StringVar(&uDeployment, "deployment", "", "serve this deployment")
	update.Flags().BoolVar(&keyRequired, "key-required", true, "whether callers need an API key")

	del := &cobra.Command{
		Use:   "delete --api API_ID STAGE",
		Short: "Delete a stage (it leaves the plans that cover it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needAPI(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", base()+"/stages/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			return f.done(cmd.OutOrStdout(), "deleted stage", args[0])
		},
	}
	c.AddCommand(list, get, deploy, update, del)
	return c
}

// clusterCmd shows the cluster as a node sees it.
func clusterCmd() *cobra.Command {
	c, f := newClientCmd("cluster", "Show the cluster: its leader and members")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, each member's gossip state, suffrage and role, and the node's applied index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			var st struct {
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
			raw, err := cl.call(cmd.Context(), "GET", "/cluster", nil, &st)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), json.RawMessage(raw))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "node %s (%s), leader %s, applied index %d\n\n", st.NodeID, st.State, orDash(st.Leader), st.AppliedIndex)
			return f.show(out, nil, func(w io.Writer) {
				fmt.Fprintln(w, "MEMBER\tGOSSIP\tSUFFRAGE\tROLE\tRAFT ADDRESS")
				for _, m := range st.Members {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.Gossip, m.Suffrage, m.Role, orDash(m.RaftAddr))
				}
			})
		},
	}
	c.AddCommand(status)
	return c
}
