package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// auditEntry is one change as the audit log records it.
type auditEntry struct {
	ID    string `json:"id"`
	At    string `json:"at"`
	Actor struct {
		Subject string   `json:"subject"`
		Email   string   `json:"email"`
		Roles   []string `json:"roles"`
	} `json:"actor"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	RequestID string `json:"requestId"`
}

func newAuditCmd() *cobra.Command {
	o := &apiOptions{}
	var (
		lf                           listFlags
		from, to, actor, resourceRef string
	)
	cmd := &cobra.Command{
		Use:   "audit [--from WHEN] [--to WHEN] [--actor SUB | --resource KIND:ID]",
		Short: "Show the audit log of directory changes",
		Long: `Audit lists the changes made through the admin API in a time range (by default the last 7
days; at most 366 days). WHEN is an RFC 3339 time (2026-11-23T09:00:00Z), a date
(2026-11-23, midnight UTC), or an age: 24h, 90m, 7d mean that long ago.
--resource is mailbox:ADDR, alias:ADDR, domain:NAME or group:ID; --actor is a token's sub.
Use --json to see each change's before and after.` + apiHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			q := url.Values{}
			for _, f := range []struct{ name, value string }{{"from", from}, {"to", to}} {
				if f.value == "" {
					continue
				}
				t, err := parseWhen(f.value, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", f.name, err)
				}
				q.Set(f.name, t.Format(time.RFC3339))
			}
			if actor != "" {
				q.Set("actor", actor)
			}
			if resourceRef != "" {
				q.Set("resource", resourceRef)
			}
			return runList(cmd, o, lf, "changes", []string{"audit"}, q, []column[auditEntry]{
				{"AT", func(e auditEntry) string { return stamp(e.At) }},
				{"ACTOR", func(e auditEntry) string {
					if e.Actor.Email != "" {
						return e.Actor.Email
					}
					return e.Actor.Subject
				}},
				{"ACTION", func(e auditEntry) string { return e.Action }},
				{"RESOURCE", func(e auditEntry) string { return e.Resource }},
			})
		},
	}
	o.addFlags(cmd)
	lf.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "changes at or after WHEN (default: 7 days ago)")
	cmd.Flags().StringVar(&to, "to", "", "changes before WHEN (default: now)")
	cmd.Flags().StringVar(&actor, "actor", "", "only changes by this subject (a token's sub)")
	cmd.Flags().StringVar(&resourceRef, "resource", "", "only changes to this resource, e.g. group:sales")
	cmd.MarkFlagsMutuallyExclusive("actor", "resource")
	return cmd
}

// parseWhen reads a point in time: RFC 3339, a date, or an age before now ("24h", "7d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-23T09:00:00Z), a date (2026-11-23) or an age such as 24h or 7d", s)
	}
	return now.Add(-d).UTC().Truncate(time.Second), nil
}
