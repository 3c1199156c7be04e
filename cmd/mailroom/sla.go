package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// slaPolicy is an SLA policy as the admin API returns it.
type slaPolicy struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Calendar           string   `json:"calendar"`
	FirstResponseHours float64  `json:"firstResponseHours"`
	NextResponseHours  float64  `json:"nextResponseHours"`
	WarnPercent        int      `json:"warnPercent"`
	Escalation         []string `json:"escalation"`
	Groups             []string `json:"groups"`
	Mailboxes          []string `json:"mailboxes"`
	HoldingReply       bool     `json:"holdingReply"`
	HoldingHours       float64  `json:"holdingHours"`
	SubjectToken       bool     `json:"subjectToken"`
	Version            int64    `json:"version"`
	CreatedAt          string   `json:"createdAt"`
	UpdatedAt          string   `json:"updatedAt"`
}

// businessHoursOf reads a number of business hours: "8 business hours", "1.5 business hours".
func businessHoursOf(h float64) string {
	n := strconv.FormatFloat(h, 'f', -1, 64)
	if h == 1 {
		return n + " business hour"
	}
	return n + " business hours"
}

// appliesTo is what a policy covers: "groups sales, support; mailbox ana@example.com".
func (p slaPolicy) appliesTo() string {
	var parts []string
	for _, k := range []struct {
		one, many string
		ids       []string
	}{{"group", "groups", p.Groups}, {"mailbox", "mailboxes", p.Mailboxes}} {
		switch len(k.ids) {
		case 0:
		case 1:
			parts = append(parts, k.one+" "+k.ids[0])
		default:
			parts = append(parts, k.many+" "+list(k.ids))
		}
	}
	if len(parts) == 0 {
		return "only mail a routing rule's sla action gives it"
	}
	return strings.Join(parts, "; ")
}

func (p slaPolicy) calendarName() string {
	if p.Calendar == "" {
		return "mon-fri 09:00-17:00 (UTC), the default"
	}
	return p.Calendar
}

var policyColumns = []column[slaPolicy]{
	{"ID", func(p slaPolicy) string { return p.ID }},
	{"NAME", func(p slaPolicy) string { return p.Name }},
	{"FIRST RESPONSE", func(p slaPolicy) string { return businessHoursOf(p.FirstResponseHours) }},
	{"CALENDAR", func(p slaPolicy) string { return orDefault(p.Calendar, "default") }},
	{"APPLIES TO", func(p slaPolicy) string { return p.appliesTo() }},
}

func printPolicy(w io.Writer, p slaPolicy) error {
	next := "as the first"
	if p.NextResponseHours > 0 {
		next = businessHoursOf(p.NextResponseHours)
	}
	warn := "at 75% of a target (the default)"
	if p.WarnPercent > 0 {
		warn = fmt.Sprintf("at %d%% of a target", p.WarnPercent)
	}
	holding := "no"
	if p.HoldingReply {
		holding = "yes: the customer is told when a promise is missed, and promised the target again"
		if p.HoldingHours > 0 {
			holding = "yes: the customer is told when a promise is missed, and promised " + businessHoursOf(p.HoldingHours) + " more"
		}
	}
	token := "no"
	if p.SubjectToken {
		token = "yes: a message naming no earlier one is threaded by the [#…] token in its subject"
	}
	return printFields(w, [][2]string{
		{"id", p.ID}, {"name", p.Name}, {"calendar", p.calendarName()},
		{"first response", businessHoursOf(p.FirstResponseHours)}, {"next response", next},
		{"warning", warn}, {"escalation", orDefault(list(p.Escalation), "nobody")},
		{"applies to", p.appliesTo()}, {"holding reply", holding}, {"subject token", token},
		{"version", version(p.Version)}, {"updated", stamp(p.UpdatedAt)},
	})
}

// slaCalendar is a business calendar as the admin API returns it.
type slaCalendar struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	TimeZone  string              `json:"timeZone"`
	Hours     map[string][]string `json:"hours"`
	Holidays  []string            `json:"holidays"`
	Version   int64               `json:"version"`
	CreatedAt string              `json:"createdAt"`
	UpdatedAt string              `json:"updatedAt"`
}

func (c slaCalendar) week() string {
	return businessHours(&replyCalendar{TimeZone: c.TimeZone, Hours: c.Hours})
}

var calendarColumns = []column[slaCalendar]{
	{"ID", func(c slaCalendar) string { return c.ID }},
	{"NAME", func(c slaCalendar) string { return c.Name }},
	{"HOURS", func(c slaCalendar) string { return c.week() }},
	{"HOLIDAYS", func(c slaCalendar) string { return strconv.Itoa(len(c.Holidays)) }},
}

func printCalendar(w io.Writer, c slaCalendar) error {
	holidays := "none"
	if len(c.Holidays) > 0 {
		holidays = list(c.Holidays)
	}
	return printFields(w, [][2]string{
		{"id", c.ID}, {"name", c.Name}, {"business hours", c.week()}, {"holidays", holidays},
		{"version", version(c.Version)}, {"updated", stamp(c.UpdatedAt)},
	})
}

// slaSetting describes the commands of policies or calendars, which the API keeps alike.
type slaSetting[T any] struct {
	path    []string // where the API keeps them
	noun    string   // "policy"
	plural  string
	example string // a JSON body, for create's help
	columns []column[T]
	print   func(io.Writer, T) error
}

func (s slaSetting[T]) at(id ...string) []string { return append(append([]string{}, s.path...), id...) }

func (s slaSetting[T]) show(cmd *cobra.Command, o *apiOptions, body []byte) error {
	if o.json {
		return printJSON(cmd.OutOrStdout(), body)
	}
	var v T
	if err := decodeAnswer(body, &v); err != nil {
		return err
	}
	return s.print(cmd.OutOrStdout(), v)
}

// commands are list, get, create, set and delete.
func (s slaSetting[T]) commands(o *apiOptions) []*cobra.Command {
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the " + s.plural,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd, o, listFlags{}, s.plural, s.at(), nil, s.columns)
		},
	}

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a " + s.noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: s.at(args[0])})
			if err != nil {
				return err
			}
			return s.show(cmd, o, resp.body)
		},
	}

	var createFile string
	create := &cobra.Command{
		Use:   "create --file FILE.json",
		Short: "Add a " + s.noun + " from a JSON file",
		Long: "Create adds the " + s.noun + " in FILE.json (\"-\" reads standard input), for example:\n\n  " + s.example +
			"\n\nThe id is derived from the name unless the file gives one. See docs/admin-api.md for every field.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readJSONFile(cmd, createFile)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: s.at(), body: body})
			if err != nil {
				return err
			}
			if resp.replayed() {
				fmt.Fprintln(cmd.ErrOrStderr(), "already done by an earlier request with the same idempotency key; its answer:")
			}
			return s.show(cmd, o, resp.body)
		},
	}
	create.Flags().StringVarP(&createFile, "file", "f", "", `the `+s.noun+` as JSON ("-" for standard input)`)
	create.MarkFlagRequired("file")
	o.addIdempotencyFlag(create)

	var patchFile, ifMatch string
	set := &cobra.Command{
		Use:   "set ID --file PATCH.json [--if-match VERSION]",
		Short: "Change a " + s.noun + " with a JSON merge patch",
		Long: "Set applies the JSON merge patch in PATCH.json (\"-\" reads standard input) to the " + s.noun +
			" ID: the members given replace its own, null removes one, the others stay; lists are replaced whole.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(ifMatch)
			if err != nil {
				return err
			}
			body, err := readJSONFile(cmd, patchFile)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{
				method: http.MethodPatch, path: s.at(args[0]),
				body: body, contentType: "application/merge-patch+json", ifMatch: v,
			})
			if err != nil {
				return err
			}
			return s.show(cmd, o, resp.body)
		},
	}
	set.Flags().StringVarP(&patchFile, "file", "f", "", `the merge patch as JSON ("-" for standard input)`)
	set.MarkFlagRequired("file")
	addIfMatchFlag(set, &ifMatch)

	var deleteIfMatch string
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Remove a " + s.noun,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelete(cmd, o, s.at(args[0]), deleteIfMatch, "deleted "+s.noun+" "+args[0])
		},
	}
	addIfMatchFlag(del, &deleteIfMatch)
	return []*cobra.Command{listCmd, get, create, set, del}
}

var (
	policySetting = slaSetting[slaPolicy]{
		path: []string{"sla", "policies"}, noun: "policy", plural: "SLA policies", columns: policyColumns, print: printPolicy,
		example: `{"name": "Support", "calendar": "kl-office", "firstResponseHours": 8, "nextResponseHours": 16,
   "escalation": ["support-leads@example.com"], "groups": ["support"], "holdingReply": true}`,
	}
	calendarSetting = slaSetting[slaCalendar]{
		path: []string{"calendars"}, noun: "calendar", plural: "calendars", columns: calendarColumns, print: printCalendar,
		example: `{"id": "kl-office", "name": "Kuala Lumpur office", "timeZone": "Asia/Kuala_Lumpur",
   "hours": {"mon": ["09:00-12:30", "13:30-18:00"], "fri": ["09:00-12:30", "14:30-18:00"]},
   "holidays": ["2026-12-25"]}`,
	}
)

// conversation is an SLA conversation as the admin API returns it.
type conversation struct {
	ID                 string   `json:"id"`
	Queue              string   `json:"queue"`
	Policy             string   `json:"policy"`
	Customer           string   `json:"customer"`
	Subject            string   `json:"subject"`
	OpenedAt           string   `json:"openedAt"`
	State              string   `json:"state"`
	Target             string   `json:"target"`
	Since              string   `json:"since"`
	UsedHours          float64  `json:"usedHours"`
	WarnAt             string   `json:"warnAt"`
	Due                string   `json:"due"`
	Warned             bool     `json:"warned"`
	Breached           bool     `json:"breached"`
	HoldingSent        bool     `json:"holdingSent"`
	FirstResponseAt    string   `json:"firstResponseAt"`
	FirstResponseHours *float64 `json:"firstResponseHours"`
	WithinTarget       *bool    `json:"withinTarget"`
	Responses          int      `json:"responses"`
	Breaches           int      `json:"breaches"`
	LastMessageAt      string   `json:"lastMessageAt"`
	Language           string   `json:"language"`
	Version            int64    `json:"version"`
}

// firstResponse is "2 business hours, within target", or "" before one.
func (c conversation) firstResponse() string {
	if c.FirstResponseHours == nil {
		return ""
	}
	s := businessHoursOf(*c.FirstResponseHours)
	if c.WithinTarget != nil && *c.WithinTarget {
		return s + ", within target"
	}
	return s + ", late"
}

// state is the state with what matters of it: "waiting, breached".
func (c conversation) state() string {
	s := c.State
	switch {
	case c.Breached:
		s += ", breached"
	case c.Warned:
		s += ", warned"
	}
	return s
}

var conversationColumns = []column[conversation]{
	{"ID", func(c conversation) string { return c.ID }},
	{"STATE", func(c conversation) string { return c.state() }},
	{"OPENED", func(c conversation) string { return stamp(c.OpenedAt) }},
	{"CUSTOMER", func(c conversation) string { return c.Customer }},
	{"SUBJECT", func(c conversation) string { return c.Subject }},
	{"DUE", func(c conversation) string { return stamp(c.Due) }},
	{"FIRST RESPONSE", func(c conversation) string { return c.firstResponse() }},
}

func printConversation(w io.Writer, c conversation) error {
	clock := "stopped: " + businessHoursOf(c.UsedHours) + " of the target used"
	if c.State == "waiting" {
		clock = "running since " + stamp(c.Since)
		if c.UsedHours > 0 {
			clock += ", after " + businessHoursOf(c.UsedHours) + " used before a pause"
		}
	} else if c.State == "answered" {
		clock = "stopped: staff answered last"
	}
	fields := [][2]string{
		{"id", c.ID}, {"queue", c.Queue}, {"policy", c.Policy}, {"customer", c.Customer}, {"subject", c.Subject},
		{"opened", stamp(c.OpenedAt)}, {"state", c.state()}, {"target", c.Target + " response"}, {"clock", clock},
	}
	if c.Due != "" {
		fields = append(fields, [2]string{"warning", stamp(c.WarnAt)}, [2]string{"due", stamp(c.Due)})
	}
	first := "not yet"
	if c.FirstResponseHours != nil {
		first = stamp(c.FirstResponseAt) + ", after " + c.firstResponse()
	}
	fields = append(fields,
		[2]string{"first response", first},
		[2]string{"responses", strconv.Itoa(c.Responses)},
		[2]string{"breaches", strconv.Itoa(c.Breaches)},
		[2]string{"last message", stamp(c.LastMessageAt)},
		[2]string{"version", version(c.Version)},
	)
	if c.HoldingSent {
		fields = append(fields, [2]string{"holding reply", "sent"})
	}
	return printFields(w, fields)
}

func conversationShow(cmd *cobra.Command, o *apiOptions, body []byte) error {
	if o.json {
		return printJSON(cmd.OutOrStdout(), body)
	}
	var c conversation
	if err := decodeAnswer(body, &c); err != nil {
		return err
	}
	return printConversation(cmd.OutOrStdout(), c)
}

// queueArg reads a queue as the API names it, "group:<id>" or "mailbox:<address>", or as people
// write it: an address is a mailbox's, anything else a group's id.
func queueArg(s string) string {
	if strings.HasPrefix(s, "group:") || strings.HasPrefix(s, "mailbox:") {
		return s
	}
	if strings.Contains(s, "@") {
		return "mailbox:" + s
	}
	return "group:" + s
}

// rangeQuery is the --from and --to of a command, as the API takes them.
func rangeQuery(q url.Values, from, to string) url.Values {
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	return q
}

// slaReport is a queue's report as the admin API returns it.
type slaReport struct {
	Queue                    string   `json:"queue"`
	From                     string   `json:"from"`
	To                       string   `json:"to"`
	Conversations            int      `json:"conversations"`
	Answered                 int      `json:"answered"`
	WithinTarget             int      `json:"withinTarget"`
	ShareWithinTarget        float64  `json:"shareWithinTarget"`
	MedianFirstResponseHours float64  `json:"medianFirstResponseHours"`
	P90FirstResponseHours    float64  `json:"p90FirstResponseHours"`
	CurrentBreaches          []string `json:"currentBreaches"`
}

func printReport(w io.Writer, r slaReport) error {
	first := "none answered"
	if r.Answered > 0 {
		first = fmt.Sprintf("median %s, 90th percentile %s", businessHoursOf(r.MedianFirstResponseHours), businessHoursOf(r.P90FirstResponseHours))
	}
	return printFields(w, [][2]string{
		{"queue", r.Queue},
		{"period", stamp(r.From) + " to " + stamp(r.To)},
		{"conversations", strconv.Itoa(r.Conversations) + " opened"},
		{"answered", strconv.Itoa(r.Answered)},
		{"within target", fmt.Sprintf("%d (%s of all opened)", r.WithinTarget, strconv.FormatFloat(r.ShareWithinTarget*100, 'f', -1, 64)+"%")},
		{"first response", first},
		{"breached now", orDefault(list(r.CurrentBreaches), "none")},
	})
}

// reportHeader is the CSV header of report --csv; current_breaches counts them.
var reportHeader = []string{"queue", "from", "to", "conversations", "answered", "within_target", "share_within_target",
	"median_first_response_hours", "p90_first_response_hours", "current_breaches"}

func (r slaReport) row() []string {
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	return []string{r.Queue, stamp(r.From), stamp(r.To), strconv.Itoa(r.Conversations), strconv.Itoa(r.Answered),
		strconv.Itoa(r.WithinTarget), num(r.ShareWithinTarget), num(r.MedianFirstResponseHours), num(r.P90FirstResponseHours),
		strconv.Itoa(len(r.CurrentBreaches))}
}

const slaLong = `SLA manages service levels: policies (how many business hours a conversation may wait for an
answer, on which calendar, and who is told before and after it runs out), the business calendars
they run on, with holidays imported from iCalendar feeds; it lists and shows the conversations a
queue (a group, or a mailbox) follows, pauses a conversation's clock while it waits on the
customer and resumes it, and reports how a queue kept its promises. See docs/admin-api.md, "SLA:
policies, calendars, conversations, reports".` + apiHelp

func newSLACmd() *cobra.Command {
	cmd, o := newAPIParent("sla", "Manage SLA policies and calendars; follow and report on conversations")
	cmd.Long = slaLong

	policies := &cobra.Command{
		Use:   "policies",
		Short: "Manage SLA policies",
		Long: `Policies are service levels: firstResponseHours (and nextResponseHours) of business time on a
calendar, the groups and mailboxes they apply to, who is warned and told of breaches, and whether
the customer gets a holding reply. Admins change them; admins and auditors read them.`,
		Args: cobra.NoArgs,
	}
	policies.AddCommand(policySetting.commands(o)...)

	calendars := &cobra.Command{
		Use:   "calendars",
		Short: "Manage business calendars and their holidays",
		Long: `Calendars are the weekly business hours in a time zone, and the holidays, that SLA policies
count business time on. Admins change them; admins and auditors read them.`,
		Args: cobra.NoArgs,
	}
	calendars.AddCommand(calendarSetting.commands(o)...)
	calendars.AddCommand(newImportHolidaysCmd(o))

	cmd.AddCommand(policies, calendars, newConversationsCmd(o), newConversationCmd(o),
		newConversationChangeCmd(o, "pause", "Stop a conversation's clock while it waits on the customer", "paused"),
		newConversationChangeCmd(o, "resume", "Start a paused conversation's clock again", "resumed"),
		newSLAReportCmd(o))
	return cmd
}

func newImportHolidaysCmd(o *apiOptions) *cobra.Command {
	var from, to, ifMatch string
	cmd := &cobra.Command{
		Use:   "import ID FEED.ics [--from DATE] [--to DATE]",
		Short: "Add the holidays of an iCalendar feed to a calendar",
		Long: `Import reads FEED.ics ("-" reads standard input), an iCalendar feed such as a national holiday
calendar exported from Google or Outlook (at most 1 MiB), and adds every date its events take off
between --from and --to (both included; this year and next by default) to the calendar's
holidays. Importing the same feed again adds nothing.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(ifMatch)
			if err != nil {
				return err
			}
			feed, path, err := readInput(cmd, args[1])
			if err != nil {
				return err
			}
			if len(feed) == 0 {
				return fmt.Errorf("%s is empty", path)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{
				method: http.MethodPost, path: calendarSetting.at(args[0], "holidays"), query: rangeQuery(url.Values{}, from, to),
				body: feed, contentType: "text/calendar", ifMatch: v,
			})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), resp.body)
			}
			var imp struct {
				Calendar     slaCalendar `json:"calendar"`
				Found, Added int
			}
			if err := decodeAnswer(resp.body, &imp); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "added %d of the %s in the feed to calendar %s\n\n", imp.Added, plural(imp.Found, "date", "dates"), imp.Calendar.ID)
			return printCalendar(w, imp.Calendar)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the first date to take, 2026-01-01 (default: 1 January this year)")
	cmd.Flags().StringVar(&to, "to", "", "the last date to take, 2027-12-31 (default: 31 December next year)")
	addIfMatchFlag(cmd, &ifMatch)
	return cmd
}

func newConversationsCmd(o *apiOptions) *cobra.Command {
	var queue, from, to, state string
	cmd := &cobra.Command{
		Use:   "conversations --queue QUEUE [--from DATE] [--to DATE] [--state STATE]",
		Short: "List the conversations a queue opened in a period",
		Long: `Conversations lists the conversations of a queue opened from --from to --to (a date, 00:00 UTC,
or an RFC 3339 time; the last 30 days by default), oldest first. The queue is group:<id> or
mailbox:<address>; a bare address is a mailbox's and anything else a group's id. --only keeps
those waiting, paused or answered. Admins and auditors see every queue, a group's owners their
group's, an employee their own mailbox's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := rangeQuery(url.Values{"queue": {queueArg(queue)}}, from, to)
			if state != "" {
				if !slices.Contains([]string{"waiting", "paused", "answered"}, state) {
					return fmt.Errorf("--only %q: waiting, paused or answered", state)
				}
				q.Set("state", state)
			}
			return runList(cmd, o, listFlags{}, "conversations", []string{"conversations"}, q, conversationColumns)
		},
	}
	cmd.Flags().StringVar(&queue, "queue", "", "the queue: group:<id> or mailbox:<address>")
	cmd.MarkFlagRequired("queue")
	cmd.Flags().StringVar(&from, "from", "", "opened from this date or time (default: 30 days before --to)")
	cmd.Flags().StringVar(&to, "to", "", "opened before this date or time (default: now)")
	// Not --state: every command takes that for the local stack's state directory.
	cmd.Flags().StringVar(&state, "only", "", "only those waiting, paused or answered")
	return cmd
}

func newConversationCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "conversation ID",
		Short: "Show a conversation and its clock",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: []string{"conversations", args[0]}})
			if err != nil {
				return err
			}
			return conversationShow(cmd, o, resp.body)
		},
	}
}

// newConversationChangeCmd is pause or resume: a POST that is idempotent by the conversation's
// state, so a repeat is a 409 that changes nothing.
func newConversationChangeCmd(o *apiOptions, verb, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: short + `. Admins, the owners of the conversation's group and the employee of its
mailbox may; it is audited as conversation.` + verb + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: []string{"conversations", args[0], verb}})
			note := ""
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.Uncertain {
				// The first attempt may have made the change before its answer was lost: show
				// the conversation as it is now.
				note = " (an earlier attempt's answer was lost; the API now says: " + ae.Problem.Detail + ")"
				resp, err = c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: []string{"conversations", args[0]}})
			}
			if err != nil {
				return err
			}
			if !o.json {
				fmt.Fprintf(cmd.OutOrStdout(), "%s conversation %s%s\n\n", done, args[0], note)
			}
			return conversationShow(cmd, o, resp.body)
		},
	}
}

func newSLAReportCmd(o *apiOptions) *cobra.Command {
	var queues []string
	var from, to string
	var asCSV bool
	cmd := &cobra.Command{
		Use:   "report --queue QUEUE [--queue QUEUE …] [--from DATE] [--to DATE] [--csv]",
		Short: "Report how queues kept their promises",
		Long: `Report shows, for each --queue, the conversations opened from --from to --to (a date, 00:00 UTC,
or an RFC 3339 time; the last 30 days by default): how many, how many were answered and how many
within the target, the median and 90th percentile business hours to the first response, and the
conversations waiting past their deadline now. --csv prints a header and one row per queue
(current_breaches is their number); --json the API's answer, or {"items": [...]} for several
queues.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asCSV && o.json {
				return errors.New("--csv and --json: choose one")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var raws []json.RawMessage
			var reports []slaReport
			for _, q := range queues {
				var r slaReport
				raw, err := c.getJSON(cmd.Context(), []string{"reports", "sla"}, rangeQuery(url.Values{"queue": {queueArg(q)}}, from, to), &r)
				if err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
				raws, reports = append(raws, raw), append(reports, r)
			}
			w := cmd.OutOrStdout()
			switch {
			case o.json && len(raws) == 1:
				return printJSON(w, raws[0])
			case o.json:
				b, err := json.Marshal(struct {
					Items []json.RawMessage `json:"items"`
				}{raws})
				if err != nil {
					return err
				}
				return printJSON(w, b)
			case asCSV:
				cw := csv.NewWriter(w)
				_ = cw.Write(reportHeader)
				for _, r := range reports {
					_ = cw.Write(r.row())
				}
				cw.Flush()
				return cw.Error()
			}
			for i, r := range reports {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if err := printReport(w, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&queues, "queue", nil, "a queue, group:<id> or mailbox:<address>; repeat it for several")
	cmd.MarkFlagRequired("queue")
	cmd.Flags().StringVar(&from, "from", "", "opened from this date or time (default: 30 days before --to)")
	cmd.Flags().StringVar(&to, "to", "", "opened before this date or time (default: now)")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV: a header, then one row per queue")
	return cmd
}
