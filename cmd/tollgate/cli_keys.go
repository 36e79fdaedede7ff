package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"
)

// keyJSON is an API key as the admin API shows it.
type keyJSON struct {
	ID          string   `json:"id"`
	Value       string   `json:"value"`
	Name        string   `json:"name"`
	CustomerID  string   `json:"customerId"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	CreatedDate int64    `json:"createdDate"`
	StageKeys   []string `json:"stageKeys"`
}

func keyRows(keys []keyJSON, withValue bool) func(io.Writer) {
	return func(w io.Writer) {
		head := "ID\tNAME\tENABLED\tCUSTOMER\tCREATED"
		if withValue {
			head += "\tVALUE"
		}
		fmt.Fprintln(w, head)
		for _, k := range keys {
			line := fmt.Sprintf("%s\t%s\t%t\t%s\t%s", k.ID, orDash(k.Name), k.Enabled, orDash(k.CustomerID), date(k.CreatedDate))
			if withValue {
				line += "\t" + orDash(k.Value)
			}
			fmt.Fprintln(w, line)
		}
	}
}

func keysCmd() *cobra.Command {
	c, f := newClientCmd("keys", "List, show, create, change, delete and import API keys")
	c.Aliases = []string{"key"}

	var listName, listCustomer string
	var listValues bool
	list := &cobra.Command{
		Use:   "list [--name PREFIX] [--customer-id ID] [--include-values]",
		Short: "List the API keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if listName != "" {
				q.Set("name", listName)
			}
			if listCustomer != "" {
				q.Set("customerId", listCustomer)
			}
			if listValues {
				q.Set("includeValues", "true")
			}
			items, err := listAll(cmd.Context(), cl, "/apikeys", q)
			if err != nil {
				return err
			}
			keys, err := decodeItems[keyJSON](items)
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), items, keyRows(keys, listValues))
		},
	}
	list.Flags().StringVar(&listName, "name", "", "only keys whose name starts with this")
	list.Flags().StringVar(&listCustomer, "customer-id", "", "only keys of this customer")
	list.Flags().BoolVar(&listValues, "include-values", false, "show each key's value")

	var getValue bool
	get := &cobra.Command{
		Use:   "get KEY_ID [--include-value]",
		Short: "Show an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			var k keyJSON
			raw, err := cl.call(cmd.Context(), "GET", "/apikeys/"+esc(args[0])+"?includeValue="+strconv.FormatBool(getValue), nil, &k)
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), raw, keyRows([]keyJSON{k}, getValue))
		},
	}
	get.Flags().BoolVar(&getValue, "include-value", false, "show the key's value")

	var name, description, value, customer, plan string
	var disabled bool
	create := &cobra.Command{
		Use:   "create --name NAME [--plan PLAN_ID] [--value V] [--customer-id C] [--disabled]",
		Short: "Create an API key (its value is generated unless given), and put it in a plan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name, "enabled": !disabled}
			for k, v := range map[string]string{"description": description, "value": value, "customerId": customer} {
				if v != "" {
					body[k] = v
				}
			}
			var k keyJSON
			raw, err := cl.call(cmd.Context(), "POST", "/apikeys", body, &k)
			if err != nil {
				return err
			}
			if plan != "" {
				if err := cl.do(cmd.Context(), "POST", "/usageplans/"+esc(plan)+"/keys", map[string]string{"keyId": k.ID, "keyType": "API_KEY"}, nil); err != nil {
					return fmt.Errorf("key %s was created, but not put in plan %s: %w", k.ID, plan, err)
				}
			}
			return f.show(cmd.OutOrStdout(), raw, keyRows([]keyJSON{k}, true))
		},
	}
	create.Flags().StringVar(&name, "name", "", "the key's name")
	create.Flags().StringVar(&description, "description", "", "the key's description")
	create.Flags().StringVar(&value, "value", "", "the key's value (20 to 128 alphanumerics; generated when not given)")
	create.Flags().StringVar(&customer, "customer-id", "", "the customer the key belongs to")
	create.Flags().StringVar(&plan, "plan", "", "a usage plan to put the key in")
	create.Flags().BoolVar(&disabled, "disabled", false, "create the key disabled")

	var uName, uDescription, uCustomer string
	var uEnabled bool
	update := &cobra.Command{
		Use:   "update KEY_ID [--name N] [--description D] [--customer-id C] [--enabled=true|false]",
		Short: "Change an API key: each flag given becomes one patch operation, applied together",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			var ops []patchOp
			for _, s := range []struct{ flag, path, value string }{
				{"name", "/name", uName}, {"description", "/description", uDescription},
				{"customer-id", "/customerId", uCustomer}, {"enabled", "/enabled", strconv.FormatBool(uEnabled)},
			} {
				if fs.Changed(s.flag) {
					ops = append(ops, patchOp{Op: "replace", Path: s.path, Value: s.value})
				}
			}
			if len(ops) == 0 {
				return fmt.Errorf("nothing to change: give at least one setting (see --help)")
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			var k keyJSON
			raw, err := cl.call(cmd.Context(), "PATCH", "/apikeys/"+esc(args[0]), map[string]any{"patchOperations": ops}, &k)
			if err != nil {
				return err
			}
			return f.show(cmd.OutOrStdout(), raw, keyRows([]keyJSON{k}, false))
		},
	}
	update.Flags().StringVar(&uName, "name", "", "the key's name")
	update.Flags().StringVar(&uDescription, "description", "", "the key's description")
	update.Flags().StringVar(&uCustomer, "customer-id", "", "the customer the key belongs to")
	update.Flags().BoolVar(&uEnabled, "enabled", true, "enable (true) or disable (false) the key")

	del := &cobra.Command{
		Use:   "delete KEY_ID",
		Short: "Delete an API key (its usage stays in the billing export)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", "/apikeys/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			return f.done(cmd.OutOrStdout(), "deleted key", args[0])
		},
	}

	var failOnWarnings bool
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import API keys from a CSV file (the original's format: Name, Key, Enabled, Description, UsagePlanIds...); prints a warning per line not imported",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			var out struct {
				IDs      []string `json:"ids"`
				Warnings []string `json:"warnings"`
			}
			raw, err := cl.send(cmd.Context(), request{method: "POST",
				path: "/apikeys?mode=import&format=csv&failonwarnings=" + strconv.FormatBool(failOnWarnings),
				body: b, contentType: "text/csv"})
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("the answer is not the JSON expected: %w", err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), json.RawMessage(raw))
			}
			for _, w := range out.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", args[0], w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d keys, %d warnings\n", len(out.IDs), len(out.Warnings))
			for _, id := range out.IDs {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&failOnWarnings, "fail-on-warnings", false, "import nothing when any line has a warning")

	c.AddCommand(list, get, create, update, del, imp)
	return c
}
