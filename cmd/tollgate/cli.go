package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The admin API commands (plans, keys, usage, stages, cluster) share the
// client flags of clientFlags and print either a table or, with
// --output json, the admin API's answer.

// maxPages bounds how many pages a listing follows.
const maxPages = 10_000

// listAll reads every page of an admin API listing: the items of each
// page's "item", following "position".
func listAll(ctx context.Context, cl *adminClient, path string, query url.Values) ([]json.RawMessage, error) {
	if query == nil {
		query = url.Values{}
	}
	query.Set("limit", "500")
	var items []json.RawMessage
	for range maxPages {
		var page struct {
			Item     []json.RawMessage `json:"item"`
			Position string            `json:"position"`
		}
		if err := cl.do(ctx, "GET", path+"?"+query.Encode(), nil, &page); err != nil {
			return nil, err
		}
		items = append(items, page.Item...)
		if page.Position == "" || page.Position == query.Get("position") {
			return items, nil
		}
		query.Set("position", page.Position)
	}
	return nil, fmt.Errorf("GET %s: more than %d pages", path, maxPages)
}

// show prints v as JSON with --output json, else as the table rows
// writes (a header line first, tab-separated columns).
func (f *clientFlags) show(w io.Writer, v any, rows func(tw io.Writer)) error {
	if f.output == "json" {
		return printJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows(tw)
	return tw.Flush()
}

// decodeItems decodes raw listing items into T.
func decodeItems[T any](items []json.RawMessage) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		var v T
		if err := json.Unmarshal(it, &v); err != nil {
			return nil, fmt.Errorf("an item of the answer is not the JSON expected: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// esc escapes an identifier for a path segment.
func esc(id string) string { return url.PathEscape(id) }

// date shows epoch seconds as a UTC date and time ("-" for none).
func date(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}

// orDash shows "" as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseVars reads name=value pairs (stage variables).
func parseVars(in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// formatFloat shows a rate without trailing zeros.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// done prints a one-line confirmation in table mode, or {"id": id} as JSON.
func (f *clientFlags) done(w io.Writer, what, id string) error {
	if f.output == "json" {
		return printJSON(w, map[string]string{"id": id})
	}
	_, err := fmt.Fprintf(w, "%s %s\n", what, id)
	return err
}

// newClientCmd is a command group that talks to the admin API.
func newClientCmd(use, short string) (*cobra.Command, *clientFlags) {
	c := &cobra.Command{Use: use, Short: short}
	return c, addClientFlags(c)
}
