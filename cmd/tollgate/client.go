package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// defaultEndpoint is the admin API a command talks to when neither
// --endpoint, TOLLGATE_ENDPOINT nor the config file names one.
const defaultEndpoint = "http://127.0.0.1:9090"

// cliConfigFile is the shape of the CLI's config file
// (~/.config/tollgate/cli.yaml, or the path in TOLLGATE_CONFIG).
type cliConfigFile struct {
	Endpoint string `json:"endpoint"`
	Token    string `json:"token"`
}

// clientFlags are the flags every command that talks to the admin API
// takes: where it is, how to authenticate, how to print.
type clientFlags struct {
	endpoint, token, output string
}

// addClientFlags registers the admin API flags on c and its subcommands.
func addClientFlags(c *cobra.Command) *clientFlags {
	f := &clientFlags{}
	c.PersistentFlags().StringVar(&f.endpoint, "endpoint", "", "the admin API's URL [$TOLLGATE_ENDPOINT, config file; default "+defaultEndpoint+"]")
	c.PersistentFlags().StringVar(&f.token, "token", "", "a bearer token of an admin credential (<id>.<secret>), needed once credentials exist [$TOLLGATE_TOKEN, config file]")
	c.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "table or json (the admin API's answer as it is)")
	return f
}

// client resolves the endpoint and the token, each from its flag, then the
// environment, then the config file, and checks the output format. A
// config file that others may read is warned about on stderr.
func (f *clientFlags) client(cmd *cobra.Command) (*adminClient, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", f.output)
	}
	endpoint, token := f.endpoint, f.token
	if endpoint == "" {
		endpoint = os.Getenv("TOLLGATE_ENDPOINT")
	}
	if token == "" {
		token = os.Getenv("TOLLGATE_TOKEN")
	}
	if endpoint == "" || token == "" {
		file, err := readCLIConfig(cmd.ErrOrStderr())
		if err != nil {
			return nil, err
		}
		if endpoint == "" {
			endpoint = file.Endpoint
		}
		if token == "" {
			token = file.Token
		}
	}
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("endpoint %q: want an http:// or https:// URL", endpoint)
	}
	return &adminClient{endpoint: strings.TrimSuffix(endpoint, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// cliConfigPath is TOLLGATE_CONFIG, or cli.yaml in the user's config
// directory ("" when there is none).
func cliConfigPath() string {
	if p := os.Getenv("TOLLGATE_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "tollgate", "cli.yaml")
}

// readCLIConfig reads the config file; a missing file is an empty one,
// unless TOLLGATE_CONFIG names it.
func readCLIConfig(warn io.Writer) (cliConfigFile, error) {
	var out cliConfigFile
	path := cliConfigPath()
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && os.Getenv("TOLLGATE_CONFIG") == "" {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("config file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "warning: %s has mode %#o: it may hold a token, make it 0600\n", path, st.Mode().Perm())
	}
	if err := yaml.UnmarshalStrict(b, &out); err != nil {
		return out, fmt.Errorf("config file %s: %w", path, err)
	}
	return out, nil
}

// adminClient sends requests to the admin API with a bearer token.
type adminClient struct {
	endpoint, token string
	http            *http.Client
}

// apiError is an admin API error answer: its status, x-amzn-ErrorType and
// message.
type apiError struct {
	status  int
	kind    string
	message string
}

func (e *apiError) Error() string {
	if e.kind == "" {
		return fmt.Sprintf("%d: %s", e.status, e.message)
	}
	return fmt.Sprintf("%s (%d): %s", e.kind, e.status, e.message)
}

// request is one admin API call. body is sent as JSON unless contentType
// says otherwise (then it must be []byte); accept asks for another form.
type request struct {
	method, path string
	body         any
	contentType  string
	accept       string
}

// send makes a call and returns the answer's body; an answer of 300 or
// above is an *apiError.
func (c *adminClient) send(ctx context.Context, r request) ([]byte, error) {
	var body io.Reader
	ct := r.contentType
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		body, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint+r.path, body)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, &apiError{status: resp.StatusCode, kind: resp.Header.Get("x-amzn-ErrorType"), message: e.Message}
	}
	return b, nil
}

// do sends in as JSON and decodes the answer into out (when not nil).
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	b, err := c.send(ctx, request{method: method, path: path, body: in})
	if err != nil {
		return err
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// call sends in as JSON, decodes the answer into out and returns it as
// it came too (for --output json).
func (c *adminClient) call(ctx context.Context, method, path string, in, out any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, method, path, in, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return raw, nil
}

// patchOp is one operation of an admin API PATCH body.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value,omitempty"`
}

// printJSON prints v indented, or raw JSON as it is (re-indented).
func printJSON(w io.Writer, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
