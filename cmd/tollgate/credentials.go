package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/admin"
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// adminCredentialsCmd manages the admin API's credentials through the
// admin API itself: while none exists it answers on loopback without one,
// after that the caller authenticates with --token (or TOLLGATE_TOKEN).
func adminCredentialsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "admin-credentials",
		Short: "Create, list and delete the admin API's credentials (access key id and secret, bearer token)",
	}
	flags := addClientFlags(c)
	client := func(cmd *cobra.Command) (*adminClient, error) { return flags.client(cmd) }

	var name, role string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a credential; its secret is printed this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				ID     string `json:"id"`
				Secret string `json:"secret"`
				Token  string `json:"token"`
				Role   string `json:"role"`
			}
			cl, err := client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "POST", "/tollgate/credentials", map[string]string{"name": name, "role": role}, &out); err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			ep := cl.endpoint
			fmt.Fprintf(cmd.OutOrStdout(), `Access key id:     %s
Secret access key: %s
Role:              %s
Bearer token:      %s

The secret is shown this once: keep it now. With the AWS CLI and SDKs:
  aws configure set aws_access_key_id %s --profile tollgate
  aws configure set aws_secret_access_key %s --profile tollgate
  aws apigateway get-usage-plans --profile tollgate --region us-east-1 --endpoint-url %s
With curl and scripts:
  export TOLLGATE_TOKEN=%s
  curl -H "Authorization: Bearer $TOLLGATE_TOKEN" %s/usageplans
`, out.ID, out.Secret, out.Role, out.Token, out.ID, out.Secret, ep, out.Token, ep)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name for the credential (who or what uses it)")
	create.Flags().StringVar(&role, "role", rules.RoleAdmin, "admin (everything) or read-only (GET and HEAD only)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the credentials (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Item []struct {
					ID          string `json:"id"`
					Name        string `json:"name"`
					Role        string `json:"role"`
					CreatedDate int64  `json:"createdDate"`
					CreatedBy   string `json:"createdBy"`
				} `json:"item"`
			}
			cl, err := client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "GET", "/tollgate/credentials", nil, &out); err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tNAME\tCREATED\tCREATED BY")
			for _, c := range out.Item {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Role, c.Name, time.Unix(c.CreatedDate, 0).UTC().Format(time.RFC3339), c.CreatedBy)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a credential: requests signed with it, or its token, are refused at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client(cmd)
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", "/tollgate/credentials/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
	var file string
	tokenCmd := &cobra.Command{
		Use:   "token",
		Short: "Print the bearer token of the first admin credential in a credentials file (serve --admin-credentials-file, certs cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, _, err := readCredentialsFile(file)
			if err != nil {
				return err
			}
			for _, cr := range creds {
				if cr.Role == rules.RoleAdmin {
					fmt.Fprintln(cmd.OutOrStdout(), cr.ID+"."+cr.Secret)
					return nil
				}
			}
			return fmt.Errorf("%s holds no admin credential", file)
		},
	}
	tokenCmd.Flags().StringVar(&file, "file", "", "the credentials file")
	_ = tokenCmd.MarkFlagRequired("file")
	c.AddCommand(create, list, del, tokenCmd)
	return c
}

// readCredentialsFile reads --admin-credentials-file: one credential a line,
// "id secret role [name]" separated by spaces; blank lines and lines
// starting with # are skipped. warn is set when the file is readable by
// others than its owner.
func readCredentialsFile(path string) (creds []admin.Credential, warn string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("admin credentials file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		warn = fmt.Sprintf("%s has mode %#o: it holds secrets, make it 0600", path, st.Mode().Perm())
	}
	sc := bufio.NewScanner(f)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			errs = append(errs, fmt.Errorf("%s:%d: want \"id secret role [name]\"", path, n))
			continue
		}
		c := admin.Credential{ID: fields[0], Secret: fields[1], Role: fields[2], Name: strings.Join(fields[3:], " ")}
		for _, err := range []error{rules.CredentialID(c.ID), rules.CredentialSecret(c.Secret), rules.Role(c.Role), rules.CredentialName(c.Name)} {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", path, n, err))
			}
		}
		creds = append(creds, c)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return creds, warn, errors.Join(errs...)
}

// addFileCredentials adds the file's credentials the cluster lacks, once
// this node serves the cluster's state. It retries while the cluster
// cannot apply (an election), until ctx ends.
func addFileCredentials(ctx context.Context, store admin.Store, nodeID string, creds []admin.Credential, log *slog.Logger) error {
	for {
		added, err := admin.AddCredentials(ctx, store, "node:"+nodeID, creds)
		if len(added) > 0 {
			log.Info("audit", "actor", "node:"+nodeID, "method", "add", "path", "admin credentials file", "credentials", strings.Join(added, ","))
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		log.Warn("could not add the admin credentials file's credentials yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second): // retry interval while the cluster elects a leader
		}
	}
}

// warnNoCredentials says, at start, that the admin API needs no credential
// while the cluster has none.
func warnNoCredentials(log *slog.Logger, cfg *pb.Config, anonymousRemote bool) {
	if len(cfg.GetAdminCredentials()) > 0 {
		return
	}
	who := "callers on this host"
	if anonymousRemote {
		who = "every caller (--admin-insecure)"
	}
	log.Warn("the admin API has no credentials, so it answers " + who + " without one; create the first with: tollgate admin-credentials create")
}
