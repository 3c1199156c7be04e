package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// adminCommands are the commands that call the admin API (docs/admin-api.md) over HTTP.
func adminCommands() []*cobra.Command {
	return []*cobra.Command{
		newMeCmd(), newDomainsCmd(), newMailboxesCmd(), newAliasesCmd(), newGroupsCmd(),
		newAuditCmd(), newDirectoryCmd(), newRulesCmd(), newExplainCmd(), newDestinationsCmd(), newModerationCmd(),
		newAutoreplyCmd(), newSLACmd(), newArchiveCmd(),
	}
}

// apiOptions are the flags every admin API command takes.
type apiOptions struct {
	url, token, stateDir string
	json                 bool
	// idempotencyKey is set only on commands that POST.
	idempotencyKey string
}

const apiHelp = `

The API is --url, else $MAILROOM_API_URL, else the one "mailroom dev" serves. The token is
--token, else $MAILROOM_TOKEN, else the one "mailroom login" saved for the local stack.`

func (o *apiOptions) addFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.url, "url", "", "admin API base URL (default $"+envAPIURL+", else the local stack's)")
	fs.StringVar(&o.token, "token", "", "bearer token (default $"+envToken+", else the one \"mailroom login\" saved)")
	fs.BoolVar(&o.json, "json", false, "print the API's JSON answer, for scripts")
	fs.StringVar(&o.stateDir, "state", "", "state directory of the local stack (default: .mailroom in the repository)")
}

// newAPIParent is a command that groups an API resource's subcommands and carries the shared flags.
func newAPIParent(use, short string) (*cobra.Command, *apiOptions) {
	o := &apiOptions{}
	cmd := &cobra.Command{Use: use, Short: short, Long: short + "." + apiHelp, Args: cobra.NoArgs}
	o.addFlags(cmd)
	return cmd, o
}

// addIdempotencyFlag is for commands that POST.
func (o *apiOptions) addIdempotencyFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.idempotencyKey, "idempotency-key", "",
		"Idempotency-Key to send (default: a random one per invocation); repeat a command with the same key and it is done once")
}

func (o *apiOptions) client() (*apiClient, error) {
	base, err := resolveAPIURL(o.url, o.stateDir)
	if err != nil {
		return nil, err
	}
	token, err := resolveToken(o.token, o.stateDir)
	if err != nil {
		return nil, err
	}
	return newAPIClient(base, token, o.idempotencyKey)
}

// printJSON pretty-prints an answer as the API sent it.
func printJSON(w io.Writer, body []byte) error {
	b, err := indentJSON(body)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func indentJSON(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		return nil, fmt.Errorf("the admin API's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// column is one column of a table of T.
type column[T any] struct {
	name  string
	value func(T) string
}

func printTable[T any](w io.Writer, cols []column[T], rows []T) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c.name)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, orDash(c.value(r)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printFields prints one resource as "name  value" lines.
func printFields(w io.Writer, fields [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], orDash(f[1]))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func list(s []string) string { return strings.Join(s, ", ") }

func version(v int64) string { return strconv.FormatInt(v, 10) }

// stamp shows an API time to the second, which is what people read.
func stamp(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// listFlags page through a listing.
type listFlags struct {
	limit  int
	cursor string
	all    bool
}

func (lf *listFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&lf.limit, "limit", 0, "items per page, 1 to 1000 (default: the API's, 100)")
	cmd.Flags().StringVar(&lf.cursor, "cursor", "", "start at this page (the cursor a previous listing printed)")
	cmd.Flags().BoolVar(&lf.all, "all", false, "list every page, not only the first")
}

// runList prints one page of a listing, or with --all every page, as a table or as JSON.
func runList[T any](cmd *cobra.Command, o *apiOptions, lf listFlags, plural string, path []string, q url.Values, cols []column[T]) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	if q == nil {
		q = url.Values{}
	}
	if lf.limit != 0 {
		q.Set("limit", strconv.Itoa(lf.limit))
	}
	cursor := lf.cursor
	var items []json.RawMessage
	var next string
	seen := map[string]bool{}
	for {
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		raw, err := c.getJSON(cmd.Context(), path, q, &page)
		if err != nil {
			return err
		}
		if !lf.all && o.json {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		items = append(items, page.Items...)
		next = page.Next
		if !lf.all || next == "" {
			break
		}
		if seen[next] {
			return fmt.Errorf("the admin API returned the cursor %q twice; stopping rather than listing forever", next)
		}
		seen[next] = true
		cursor = next
	}

	w := cmd.OutOrStdout()
	if o.json {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(struct {
			Items []json.RawMessage `json:"items"`
		}{items})
		if err != nil {
			return err
		}
		return printJSON(w, b)
	}
	rows := make([]T, len(items))
	for i, it := range items {
		if err := decodeAnswer(it, &rows[i]); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(w, "no %s\n", plural)
	} else if err := printTable(w, cols, rows); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s (or --all for every page)\n", quoteArg(next))
	}
	return nil
}

// quoteArg quotes s for a POSIX shell when it needs it, so the printed cursor can be pasted.
func quoteArg(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,:/+@%", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// resource describes one collection of the API for the commands they all have.
type resource[T any] struct {
	collection string // path, "domains"
	noun       string // "domain"
	plural     string
	key        string // what identifies one on the command line, "NAME"
	columns    []column[T]
	fields     func(T) [][2]string
}

// show prints one resource from the API's answer.
func (r resource[T]) show(cmd *cobra.Command, o *apiOptions, body []byte) error {
	if o.json {
		return printJSON(cmd.OutOrStdout(), body)
	}
	var v T
	if err := decodeAnswer(body, &v); err != nil {
		return err
	}
	return printFields(cmd.OutOrStdout(), r.fields(v))
}

func (r resource[T]) listCmd(o *apiOptions) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + r.plural,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd, o, lf, r.plural, []string{r.collection}, nil, r.columns)
		},
	}
	lf.add(cmd)
	return cmd
}

func (r resource[T]) getCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get " + r.key,
		Short: "Show a " + r.noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: []string{r.collection, args[0]}})
			if err != nil {
				return err
			}
			return r.show(cmd, o, resp.body)
		},
	}
}

// create POSTs body and shows what the API made of it.
func (r resource[T]) create(cmd *cobra.Command, o *apiOptions, body map[string]any) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: []string{r.collection}, body: b})
	if err != nil {
		return err
	}
	if resp.replayed() {
		fmt.Fprintln(cmd.ErrOrStderr(), "already done by an earlier request with the same idempotency key; its answer:")
	}
	return r.show(cmd, o, resp.body)
}

// updateCmd sends a merge patch made of the flags the user set, which addFlags adds.
func (r resource[T]) updateCmd(o *apiOptions, addFlags func(cmd *cobra.Command), fields []flagField, extra func(cmd *cobra.Command, patch map[string]any)) *cobra.Command {
	var ifMatch string
	cmd := &cobra.Command{
		Use:   "update " + r.key + " [flags]",
		Short: "Change a " + r.noun + "; only the flags given are changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := bodyFromFlags(cmd, fields, true)
			if extra != nil {
				extra(cmd, patch)
			}
			if len(patch) == 0 {
				return fmt.Errorf("nothing to change: give at least one of %s", flagNames(fields))
			}
			v, err := parseVersion(ifMatch)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			b, err := json.Marshal(patch)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{
				method: http.MethodPatch, path: []string{r.collection, args[0]},
				body: b, contentType: "application/merge-patch+json", ifMatch: v,
			})
			if err != nil {
				return err
			}
			return r.show(cmd, o, resp.body)
		},
	}
	addFlags(cmd)
	addIfMatchFlag(cmd, &ifMatch)
	return cmd
}

func (r resource[T]) deleteCmd(o *apiOptions) *cobra.Command {
	var ifMatch string
	cmd := &cobra.Command{
		Use:   "delete " + r.key,
		Short: "Remove a " + r.noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelete(cmd, o, []string{r.collection, args[0]}, ifMatch, fmt.Sprintf("deleted %s %s", r.noun, args[0]))
		},
	}
	addIfMatchFlag(cmd, &ifMatch)
	return cmd
}

// runDelete sends a DELETE and confirms it with done.
func runDelete(cmd *cobra.Command, o *apiOptions, path []string, ifMatch, done string) error {
	v, err := parseVersion(ifMatch)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	_, err = c.do(cmd.Context(), apiRequest{method: http.MethodDelete, path: path, ifMatch: v})
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Uncertain {
		// The first attempt may have deleted it before its answer was lost.
		fmt.Fprintln(cmd.OutOrStdout(), done+" (an earlier attempt's answer was lost; it is gone now)")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), done)
	return nil
}

func addIfMatchFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "if-match", "", "only if the version is still this one (from get); a stale one changes nothing")
}

// parseVersion reads --if-match: a version, 3, or the ETag, "3".
func parseVersion(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	v := strings.Trim(s, `"`)
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
		return "", fmt.Errorf("--if-match %q: want a version number, as get shows it", s)
	}
	return v, nil
}

// flagField maps a flag to a field of a request body; a dotted field is nested ("posting.policy").
type flagField struct{ flag, field string }

// bodyFromFlags makes a request body of the flags the user set. For a patch, an empty value
// clears the field (JSON null); for a create it is left out.
func bodyFromFlags(cmd *cobra.Command, fields []flagField, patch bool) map[string]any {
	body := map[string]any{}
	for _, f := range fields {
		fl := cmd.Flags().Lookup(f.flag)
		if fl == nil || !fl.Changed {
			continue
		}
		var v any
		switch fl.Value.Type() {
		case "bool":
			continue // a switch such as --clear-forward means what its command says
		case "stringSlice":
			vals, _ := cmd.Flags().GetStringSlice(f.flag)
			var kept []string
			for _, s := range vals {
				if s = strings.TrimSpace(s); s != "" {
					kept = append(kept, s)
				}
			}
			if len(kept) > 0 {
				v = kept
			}
		default:
			if s := fl.Value.String(); s != "" {
				v = s
			}
		}
		if v == nil && !patch {
			continue
		}
		setField(body, f.field, v)
	}
	return body
}

func setField(body map[string]any, field string, v any) {
	parent, rest, nested := strings.Cut(field, ".")
	if !nested {
		body[field] = v
		return
	}
	m, ok := body[parent].(map[string]any)
	if !ok {
		m = map[string]any{}
		body[parent] = m
	}
	setField(m, rest, v)
}

func flagNames(fields []flagField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = "--" + f.flag
	}
	return strings.Join(names, ", ")
}

// me is the caller as the API sees it.
type me struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email"`
	Roles   []string `json:"roles"`
	Scopes  []string `json:"scopes"`
}

func newMeCmd() *cobra.Command {
	o := &apiOptions{}
	cmd := &cobra.Command{
		Use:   "me",
		Short: "Show who the admin API takes you for",
		Long:  "Me shows the caller as the admin API sees the token: subject, email, roles and scopes." + apiHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var m me
			raw, err := c.getJSON(cmd.Context(), []string{"me"}, nil, &m)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			scopes := list(m.Scopes)
			if len(m.Scopes) == 0 {
				scopes = "none (roles alone decide)"
			}
			return printFields(cmd.OutOrStdout(), [][2]string{
				{"subject", m.Subject}, {"email", m.Email}, {"roles", list(m.Roles)}, {"scopes", scopes},
			})
		},
	}
	o.addFlags(cmd)
	return cmd
}
