package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// archivedSummary is a message as an archive search lists it.
type archivedSummary struct {
	ID             string   `json:"id"`
	ReceivedAt     string   `json:"receivedAt"`
	FromAddr       string   `json:"fromAddr"`
	Subject        string   `json:"subject"`
	Size           int64    `json:"size"`
	HasAttachments bool     `json:"hasAttachments"`
	Labels         []string `json:"labels"`
	Flags          []string `json:"flags"`
}

var summaryColumns = []column[archivedSummary]{
	{"RECEIVED", func(s archivedSummary) string { return stamp(s.ReceivedAt) }},
	{"FROM", func(s archivedSummary) string { return s.FromAddr }},
	{"SUBJECT", func(s archivedSummary) string { return clip(s.Subject, 60) }},
	{"SIZE", func(s archivedSummary) string { return byteSize(s.Size) }},
	{"ID", func(s archivedSummary) string { return s.ID }},
}

// archivedRecord is the part of a message's record `archive show` prints; --json shows all of it.
type archivedRecord struct {
	ID           string        `json:"id"`
	Key          string        `json:"key"`
	ReceivedAt   string        `json:"receivedAt"`
	EnvelopeFrom string        `json:"envelopeFrom"`
	Recipients   []string      `json:"recipients"`
	MessageID    string        `json:"messageId"`
	From         []mailAddress `json:"from"`
	To           []mailAddress `json:"to"`
	Cc           []mailAddress `json:"cc"`
	Subject      string        `json:"subject"`
	Date         string        `json:"date"`
	Size         int64         `json:"size"`
	SHA256       string        `json:"sha256"`
	Attachments  []struct {
		Filename    string `json:"filename"`
		ContentType string `json:"contentType"`
		Size        int64  `json:"size"`
	} `json:"attachments"`
	Groups   []string `json:"groups"`
	Labels   []string `json:"labels"`
	Priority string   `json:"priority"`
	Flags    []string `json:"flags"`
}

type mailAddress struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

func (a mailAddress) String() string {
	if a.Name == "" {
		return a.Address
	}
	return fmt.Sprintf("%s <%s>", a.Name, a.Address)
}

func addresses(as []mailAddress) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return list(out)
}

func newArchiveCmd() *cobra.Command {
	cmd, o := newAPIParent("archive", "Search the archive and read archived messages' records")
	cmd.AddCommand(newArchiveSearchCmd(o), newArchiveShowCmd(o))
	return cmd
}

func newArchiveSearchCmd(o *apiOptions) *cobra.Command {
	var (
		lf                                             listFlags
		mailbox, recipient, group, sender, label, subj string
		from, to                                       string
		hasAttachment                                  bool
	)
	cmd := &cobra.Command{
		Use:   "search [--mailbox ADDR | --recipient ADDR | --group ID] [--sender ADDR] [--label LABEL] [--subject WORDS] [--from WHEN] [--to WHEN] [--has-attachment]",
		Short: "Search the archive, newest first",
		Long: `Search lists archived messages, newest first: by the mailbox or any other address they were
sent to (--mailbox, --recipient), a group they were delivered through (--group), their sender,
a label; within --from and --to (both included); with --subject words that must all appear in
the subject, in any case; with or without attachments (--has-attachment, --has-attachment=false).
With no mailbox, recipient, group, sender or label it searches every message received in the
range: at most 366 days, by default the last 30.

WHEN is an RFC 3339 time (2026-11-23T09:00:00Z), a date (2026-11-23, the whole UTC day), or an
age: 24h, 7d mean that long ago. A page with a filter may hold fewer messages than --limit, even
none, and still print a cursor: the search stops after a bounded amount of reading; --all reads
on to the end. Admins and auditors only; every search is recorded in the audit log.` + apiHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for _, f := range []struct{ name, value string }{
				{"mailbox", mailbox}, {"recipient", recipient}, {"group", group}, {"sender", sender},
				{"label", label}, {"subject", subj},
			} {
				if f.value != "" {
					q.Set(f.name, f.value)
				}
			}
			now := time.Now()
			for _, f := range []struct{ name, value string }{{"from", from}, {"to", to}} {
				if f.value == "" {
					continue
				}
				v, err := searchWhen(f.value, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", f.name, err)
				}
				q.Set(f.name, v)
			}
			if cmd.Flags().Changed("has-attachment") {
				q.Set("hasAttachment", strconv.FormatBool(hasAttachment))
			}
			return runList(cmd, o, lf, "messages", []string{"archive", "search"}, q, summaryColumns)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&mailbox, "mailbox", "", "messages to this mailbox")
	fs.StringVar(&recipient, "recipient", "", "messages to this address (any envelope recipient)")
	fs.StringVar(&group, "group", "", "messages delivered through this group (its id)")
	fs.StringVar(&sender, "sender", "", "messages from this address (the first From)")
	fs.StringVar(&label, "label", "", "messages with this label")
	fs.StringVar(&subj, "subject", "", "words that must all appear in the subject")
	fs.StringVar(&from, "from", "", "received at or after WHEN")
	fs.StringVar(&to, "to", "", "received at or before WHEN (a date: by the end of that day)")
	fs.BoolVar(&hasAttachment, "has-attachment", false, "only messages with attachments (=false: only those without)")
	lf.add(cmd)
	cmd.MarkFlagsMutuallyExclusive("mailbox", "recipient", "group")
	return cmd
}

// searchWhen reads --from or --to: a date is passed on as a date, which the API reads as a whole
// day; anything else as parseWhen reads it.
func searchWhen(s string, now time.Time) (string, error) {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return s, nil
	}
	t, err := parseWhen(s, now)
	if err != nil {
		return "", err
	}
	return t.Format(time.RFC3339), nil
}

func newArchiveShowCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an archived message's record (recorded in the audit log)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: []string{"archive", "messages", args[0]}})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), resp.body)
			}
			var r archivedRecord
			if err := decodeAnswer(resp.body, &r); err != nil {
				return err
			}
			var atts []string
			for _, a := range r.Attachments {
				atts = append(atts, fmt.Sprintf("%s (%s, %s)", orDefault(a.Filename, "unnamed"), a.ContentType, byteSize(a.Size)))
			}
			return printFields(cmd.OutOrStdout(), [][2]string{
				{"id", r.ID}, {"received", stamp(r.ReceivedAt)}, {"envelope from", r.EnvelopeFrom},
				{"recipients", list(r.Recipients)}, {"from", addresses(r.From)}, {"to", addresses(r.To)},
				{"cc", addresses(r.Cc)}, {"subject", r.Subject}, {"date", stamp(r.Date)},
				{"message-id", r.MessageID}, {"size", byteSize(r.Size)}, {"attachments", strings.Join(atts, "; ")},
				{"groups", list(r.Groups)}, {"labels", list(r.Labels)}, {"priority", r.Priority},
				{"flags", list(r.Flags)}, {"original", r.Key}, {"sha256", r.SHA256},
			})
		},
	}
}

// byteSize shows a size as people read it: 812 B, 12.4 KB, 3.1 MB (powers of 1024).
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
}

// clip shortens s to at most n characters for a table column.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
