package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
)

// devTokenFile is where `mailroom login` leaves the token, in the state directory, for the
// commands that call the admin API.
const devTokenFile = "token"

// loginRoles are the roles the admin API grants anything to (docs/admin-api.md, "Who may do
// what"). A token with any other role would be accepted by the front and then denied
// everything, which looks like a bug in the API rather than a typo on the command line.
var loginRoles = []string{"admin", "group-manager", "auditor", "employee"}

func newLoginCmd() *cobra.Command {
	var (
		roles     []string
		email     string
		sub       string
		scope     string
		ttl       time.Duration
		stateDir  string
		printOnly bool
	)
	cmd := &cobra.Command{
		Use:   "login --role ROLE [--role ROLE] [--email ADDR]",
		Short: "Issue a development token for the local admin API",
		Long: `Login issues a token for the admin API that "mailroom dev" serves on 127.0.0.1, signed with
the local stack's own key (devtoken.pem in the state directory, made on first use). The local
front checks it as API Gateway's JWT authorizer checks real tokens: signature, issuer
` + apigw.DefaultIssuer + `, audience ` + apigw.DefaultAudience + `, expiry.

The token is saved to the state directory's "token" file, where other mailroom commands find
it, and printed, so it also works with curl:

  curl -H "Authorization: Bearer $(bin/mailroom login --role admin)" http://127.0.0.1:8080/me

Roles are admin, group-manager, auditor and employee (docs/admin-api.md, "Who may do what").
Group managers and employees act on their own mailbox, so they need --email. Without --scope
the token has no scope claim and is judged by role alone, like an ID token.

Development tokens only work against the local stack; nothing else trusts its key. For a
deployed API, get a token from your identity provider and pass it to commands with --token or
the MAILROOM_TOKEN environment variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles, err := checkLoginRoles(roles)
			if err != nil {
				return err
			}
			if email != "" && !strings.Contains(email, "@") {
				return fmt.Errorf("--email %q is not an email address", email)
			}
			if email == "" && (slices.Contains(roles, "group-manager") || slices.Contains(roles, "employee")) {
				return errors.New("group managers and employees are known by their mailbox: add --email, e.g. --email ana@example.com")
			}
			if ttl <= 0 {
				return fmt.Errorf("--ttl %s: a token must live for some time", ttl)
			}
			if sub == "" {
				// Stable for the same person, so the audit log shows one actor across logins.
				sub = "local:" + email
				if email == "" {
					sub = "local:" + strings.Join(roles, "+")
				}
			}
			if stateDir == "" {
				d, err := devstack.DefaultStateDir()
				if err != nil {
					return err
				}
				stateDir = d
			}
			keys, err := apigw.LoadOrCreateKeys(stateDir)
			if err != nil {
				return err
			}
			issued := time.Now()
			token, err := keys.Issue(apigw.Claims{
				Subject: sub, Email: email, Roles: roles, Scope: strings.Join(strings.Fields(scope), " "),
				IssuedAt: issued, TTL: ttl,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)

			note := fmt.Sprintf("development token for %s (sub %s), valid until %s",
				strings.Join(roles, ", "), sub, issued.Add(ttl).Local().Format("2006-01-02 15:04 MST"))
			if !printOnly {
				path := filepath.Join(stateDir, devTokenFile)
				if err := writeDevToken(path, token); err != nil {
					return err
				}
				note += "; saved to " + path
			}
			fmt.Fprintln(cmd.ErrOrStderr(), note)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&roles, "role", nil, "role to grant: "+strings.Join(loginRoles, ", ")+" (repeatable or comma-separated)")
	cmd.Flags().StringVar(&email, "email", "", "the caller's mailbox (required for group-manager and employee)")
	cmd.Flags().StringVar(&sub, "sub", "", `subject, the caller's id in the audit log (default "local:" and the email, or the roles)`)
	cmd.Flags().StringVar(&scope, "scope", "", `space-separated scopes, e.g. "mailroom/read mailroom/write" (default: no scope claim)`)
	cmd.Flags().DurationVar(&ttl, "ttl", apigw.DefaultTTL, "how long the token is valid")
	cmd.Flags().StringVar(&stateDir, "state", "", "state directory of the local stack (default: .mailroom in the repository)")
	cmd.Flags().BoolVar(&printOnly, "print", false, "only print the token; leave the saved one as it is")
	return cmd
}

// checkLoginRoles refuses an empty or unknown role and drops repeats, keeping the order given.
func checkLoginRoles(roles []string) ([]string, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("--role is required: one or more of %s", strings.Join(loginRoles, ", "))
	}
	var out []string
	for _, r := range roles {
		r = strings.TrimSpace(r)
		if !slices.Contains(loginRoles, r) {
			return nil, fmt.Errorf("unknown role %q: the admin API knows %s", r, strings.Join(loginRoles, ", "))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// writeDevToken replaces the saved token in one step, so a command reading it never sees half
// of one. The file is 0600, as CreateTemp makes it: the token is as good as a password to the
// local API.
func writeDevToken(path, token string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), devTokenFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(token + "\n")
	if err := errors.Join(err, tmp.Close()); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
