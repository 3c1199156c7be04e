package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// replyKind is one kind of automatic-reply setting, as the commands name it and the API keeps it.
type replyKind struct {
	name string // on the command line and in the path: "closed-notice"
	noun string // "closed-mailbox notice"
	key  string // what it is set on: "ADDRESS" or "GROUP"
	on   string // "mailboxes" or "groups"
}

func (k replyKind) path(id string) []string { return []string{k.on, id, k.name} }

var (
	outOfOfficeKind     = replyKind{"out-of-office", "out-of-office reply", "ADDRESS", "mailboxes"}
	acknowledgementKind = replyKind{"acknowledgement", "acknowledgement", "GROUP", "groups"}
	closedNoticeKind    = replyKind{"closed-notice", "closed-mailbox notice", "ADDRESS", "mailboxes"}
	replyKinds          = []replyKind{outOfOfficeKind, acknowledgementKind, closedNoticeKind}
)

func replyKindNamed(name string) (replyKind, error) {
	for _, k := range replyKinds {
		if k.name == name {
			return k, nil
		}
	}
	return replyKind{}, fmt.Errorf("%q is not a kind of automatic reply: use out-of-office, acknowledgement or closed-notice", name)
}

// replyText is one language's text of a reply.
type replyText struct {
	Language string `json:"language"`
	Subject  string `json:"subject"`
	Body     string `json:"body"`
}

// replySetting is any of the three settings as the admin API returns them; each uses its own
// fields.
type replySetting struct {
	Mailbox      string         `json:"mailbox"`
	Group        string         `json:"group"`
	Enabled      bool           `json:"enabled"`
	Start        string         `json:"start"`
	End          string         `json:"end"`
	TimeZone     string         `json:"timeZone"`
	Audience     string         `json:"audience"`
	Internal     []replyText    `json:"internal"`
	External     []replyText    `json:"external"`
	Templates    []replyText    `json:"templates"`
	PromiseHours int            `json:"promiseHours"`
	Calendar     *replyCalendar `json:"calendar"`
	Successor    string         `json:"successor"`
	Forward      bool           `json:"forward"`
	Language     string         `json:"language"`
	RepeatDays   int            `json:"repeatDays"`
	Version      int64          `json:"version"`
	CreatedAt    string         `json:"createdAt"`
	UpdatedAt    string         `json:"updatedAt"`
}

type replyCalendar struct {
	TimeZone string              `json:"timeZone"`
	Hours    map[string][]string `json:"hours"`
	Holidays []string            `json:"holidays"`
}

// printReplySetting shows a setting as people read it.
func printReplySetting(w io.Writer, k replyKind, s replySetting) error {
	state := "off"
	if s.Enabled {
		state = "on"
	}
	var fields [][2]string
	switch k {
	case outOfOfficeKind:
		audience := "everyone"
		if s.Audience == "internal" {
			audience = "senders of the organisation only"
		}
		fields = [][2]string{
			{"mailbox", s.Mailbox}, {"state", state}, {"period", replyPeriod(s)}, {"audience", audience},
			{"language", orDefault(s.Language, "the mailbox's locale")}, {"texts", outOfOfficeTexts(s)},
		}
	case acknowledgementKind:
		promise := "no time promised"
		if s.PromiseHours > 0 {
			promise = "a reply within " + plural(s.PromiseHours, "business hour", "business hours")
		}
		fields = [][2]string{
			{"group", s.Group}, {"state", state}, {"promise", promise}, {"business hours", businessHours(s.Calendar)},
		}
		if s.Calendar != nil && len(s.Calendar.Holidays) > 0 {
			fields = append(fields, [2]string{"holidays", list(s.Calendar.Holidays)})
		}
		fields = append(fields, [2]string{"language", orDefault(s.Language, "English")}, [2]string{"texts", textLanguages(s.Templates)})
	case closedNoticeKind:
		forward := "no"
		if s.Forward {
			forward = "yes: the mailbox's mail goes on to " + s.Successor
		}
		fields = [][2]string{
			{"mailbox", s.Mailbox}, {"state", state}, {"successor", s.Successor}, {"forward", forward},
			{"language", orDefault(s.Language, "the mailbox's locale")}, {"texts", textLanguages(s.Templates)},
		}
	}
	repeat := "after 7 days (the default)"
	if s.RepeatDays > 0 {
		repeat = "after " + plural(s.RepeatDays, "day", "days")
	}
	fields = append(fields, [2]string{"repeat", "the same sender gets it again " + repeat},
		[2]string{"version", version(s.Version)}, [2]string{"updated", stamp(s.UpdatedAt)})
	return printFields(w, fields)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// replyPeriod is when an out-of-office reply answers, in its time zone.
func replyPeriod(s replySetting) string {
	zone := orDefault(s.TimeZone, "the mailbox's time zone")
	switch {
	case s.Start == "" && s.End == "":
		return "whenever it is on"
	case s.End == "":
		return "from " + s.Start + " until it is switched off (" + zone + ")"
	case s.Start == "":
		return "until " + s.End + " (" + zone + ")"
	}
	return "from " + s.Start + " to " + s.End + " (" + zone + ")"
}

func outOfOfficeTexts(s replySetting) string {
	switch {
	case len(s.Internal) == 0 && len(s.External) == 0:
		return textLanguages(nil)
	case len(s.External) == 0:
		return textLanguages(s.Internal) + " (for everyone)"
	}
	return "internal senders: " + textLanguages(s.Internal) + "; external senders: " + textLanguages(s.External)
}

// textLanguages lists the languages of a setting's own texts.
func textLanguages(ts []replyText) string {
	if len(ts) == 0 {
		return "the shipped texts"
	}
	langs := make([]string, len(ts))
	for i, t := range ts {
		langs[i] = t.Language
	}
	return list(langs)
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// businessHours shows a calendar's week on one line, days with the same hours run together:
// "mon-thu 09:00-12:30, 13:30-18:00; fri 09:00-12:00 (Asia/Kuala_Lumpur)".
func businessHours(c *replyCalendar) string {
	if c == nil {
		return "mon-fri 09:00-17:00 (UTC), the default"
	}
	var parts []string
	for i := 0; i < len(weekdays); {
		hours := c.Hours[weekdays[i]]
		j := i + 1
		for j < len(weekdays) && slices.Equal(c.Hours[weekdays[j]], hours) {
			j++
		}
		if len(hours) > 0 {
			days := weekdays[i]
			if j-i > 1 {
				days += "-" + weekdays[j-1]
			}
			parts = append(parts, days+" "+strings.Join(hours, ", "))
		}
		i = j
	}
	return strings.Join(parts, "; ") + " (" + c.TimeZone + ")"
}

// replyShow prints the API's answer about one setting.
func replyShow(cmd *cobra.Command, o *apiOptions, k replyKind, body []byte) error {
	if o.json {
		return printJSON(cmd.OutOrStdout(), body)
	}
	var s replySetting
	if err := decodeAnswer(body, &s); err != nil {
		return err
	}
	return printReplySetting(cmd.OutOrStdout(), k, s)
}

const autoreplyLong = `Autoreply manages automatic replies: a person's out-of-office reply (on their mailbox), a
group's acknowledgement that says when to expect an answer, and a closed mailbox's notice. It
shows the texts Mailroom ships and the rules of when no reply is sent, and previews the replies a
message would get. See docs/admin-api.md, "Automatic replies".` + apiHelp

func newAutoreplyCmd() *cobra.Command {
	cmd, o := newAPIParent("autoreply", "Manage out-of-office replies, acknowledgements and closed-mailbox notices")
	cmd.Long = autoreplyLong

	get := &cobra.Command{
		Use:       "get out-of-office|closed-notice ADDRESS | get acknowledgement GROUP",
		Short:     "Show an automatic reply's setting",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{outOfOfficeKind.name, acknowledgementKind.name, closedNoticeKind.name},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := replyKindNamed(args[0])
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: k.path(args[1])})
			if err != nil {
				return err
			}
			return replyShow(cmd, o, k, resp.body)
		},
	}

	set := &cobra.Command{
		Use:   "set KIND ID [flags]",
		Short: "Set an out-of-office reply, an acknowledgement or a closed-mailbox notice",
		Long: `Set changes only what its flags name (a JSON merge patch) when the setting exists, and creates
it otherwise, switched on unless --off is given. --file sends a whole setting as JSON instead,
replacing what is there.`,
		Args: cobra.NoArgs,
	}
	set.AddCommand(newSetOutOfOfficeCmd(o), newSetAcknowledgementCmd(o), newSetClosedNoticeCmd(o))

	var clearIfMatch string
	clearCmd := &cobra.Command{
		Use:       "clear KIND ID",
		Short:     "Remove an automatic reply's setting",
		Long:      "Clear removes the setting: out-of-office ADDRESS, acknowledgement GROUP or closed-notice ADDRESS.",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{outOfOfficeKind.name, acknowledgementKind.name, closedNoticeKind.name},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := replyKindNamed(args[0])
			if err != nil {
				return err
			}
			return runDelete(cmd, o, k.path(args[1]), clearIfMatch, "cleared the "+k.noun+" of "+args[1])
		},
	}
	addIfMatchFlag(clearCmd, &clearIfMatch)

	cmd.AddCommand(get, set, clearCmd, newPreviewCmd(o), newTemplatesCmd(o), newReplyRulesCmd(o))
	return cmd
}

// setFlags are the flags every set command takes.
type setFlags struct {
	on, off                     bool
	subject, body, textLanguage string
	file, ifMatch               string
	// fields names every flag that sets a field, which --file leaves no room for.
	fields []string
}

// add adds the common flags to cmd; own are the names of the command's own field flags.
func (f *setFlags) add(cmd *cobra.Command, fields *[]flagField, own ...string) {
	fs := cmd.Flags()
	f.fields = append(own, "on", "off", "language", "repeat-days", "subject", "body", "text-language")
	fs.BoolVar(&f.on, "on", false, "switch it on (a new setting is on unless --off)")
	fs.BoolVar(&f.off, "off", false, "switch it off, keeping the rest")
	fs.String("language", "", `the language to answer in whatever the message's: en, zh-Hans, zh-Hant, ms or vi ("" for the message's, else the mailbox's)`)
	fs.Int("repeat-days", 0, "days before the same sender gets it again, 1 to 365 (0 for the default, 7)")
	fs.StringVar(&f.subject, "subject", "", `the subject of a text of your own (a template: see "mailroom autoreply templates")`)
	fs.StringVar(&f.body, "body", "", "the body of a text of your own")
	fs.StringVar(&f.textLanguage, "text-language", "en", "the language of --subject and --body; a text in that language is replaced")
	fs.StringVarP(&f.file, "file", "f", "", `the whole setting as JSON ("-" for standard input), replacing what is there`)
	addIfMatchFlag(cmd, &f.ifMatch)
	*fields = append(*fields, flagField{"language", "language"})
}

// setRun is what a set command does beyond the common flags: put the fields of its kind in the
// patch, given the setting as it is (nil when there is none yet).
type setRun func(cmd *cobra.Command, patch map[string]any, current *replySetting) error

// runSet sets a setting from the flags given, or from --file.
func runSet(cmd *cobra.Command, o *apiOptions, k replyKind, id string, f *setFlags, fields []flagField, kindFields setRun) error {
	v, err := parseVersion(f.ifMatch)
	if err != nil {
		return err
	}
	if f.on && f.off {
		return errors.New("--on and --off contradict each other")
	}
	if f.file != "" {
		var others []string
		for _, name := range f.fields {
			if cmd.Flags().Changed(name) {
				others = append(others, "--"+name)
			}
		}
		if len(others) > 0 {
			return fmt.Errorf("--file sets the whole %s; leave out %s or put it in the file", k.noun, strings.Join(others, ", "))
		}
		body, err := readJSONFile(cmd, f.file)
		if err != nil {
			return err
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodPut, path: k.path(id), body: body, ifMatch: v})
		if err != nil {
			return err
		}
		return replyShow(cmd, o, k, resp.body)
	}

	c, err := o.client()
	if err != nil {
		return err
	}
	var current *replySetting
	resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: k.path(id)})
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
	case err != nil:
		return err
	default:
		current = &replySetting{}
		if err := decodeAnswer(resp.body, current); err != nil {
			return err
		}
	}
	exists := current != nil

	patch := bodyFromFlags(cmd, fields, exists)
	switch {
	case f.on, !exists && !f.off:
		patch["enabled"] = true
	case f.off:
		patch["enabled"] = false
	}
	if fl := cmd.Flags().Lookup("repeat-days"); fl.Changed {
		n, _ := cmd.Flags().GetInt("repeat-days")
		setNumber(patch, "repeatDays", n, exists)
	}
	if err := kindFields(cmd, patch, current); err != nil {
		return err
	}
	if exists && len(patch) == 0 {
		return fmt.Errorf("nothing to change: give --on, --off or another of the flags (see --help)")
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	req := apiRequest{method: http.MethodPut, path: k.path(id), body: body, ifMatch: v}
	if exists {
		req.method, req.contentType = http.MethodPatch, "application/merge-patch+json"
		if req.ifMatch == "" {
			// The texts were merged into what was read: a change made since must not be lost.
			req.ifMatch = version(current.Version)
		}
	}
	resp, err = c.do(cmd.Context(), req)
	if err != nil {
		return err
	}
	return replyShow(cmd, o, k, resp.body)
}

// setNumber puts a number in a body; 0 is the default, which a patch restores by clearing the
// field and a new setting by leaving it out.
func setNumber(body map[string]any, field string, n int, patch bool) {
	switch {
	case n != 0:
		body[field] = n
	case patch:
		body[field] = nil
	}
}

// withText returns texts with the text of --text-language made of --subject and --body: the one
// in that language changed, or a new one added.
func withText(cmd *cobra.Command, f *setFlags, texts []replyText) ([]replyText, error) {
	subject, body := cmd.Flags().Changed("subject"), cmd.Flags().Changed("body")
	out := slices.Clone(texts)
	for i, t := range out {
		if strings.EqualFold(t.Language, f.textLanguage) {
			if subject {
				out[i].Subject = f.subject
			}
			if body {
				out[i].Body = f.body
			}
			return out, nil
		}
	}
	if !subject || !body {
		return nil, fmt.Errorf("there is no %s text yet: give both --subject and --body", f.textLanguage)
	}
	return append(out, replyText{Language: f.textLanguage, Subject: f.subject, Body: f.body}), nil
}

// putText returns texts with t in place of the text in its language, or added.
func putText(texts []replyText, t replyText) []replyText {
	out := slices.Clone(texts)
	for i, x := range out {
		if strings.EqualFold(x.Language, t.Language) {
			out[i] = t
			return out
		}
	}
	return append(out, t)
}

// hasText reports whether the flags change a text.
func hasText(cmd *cobra.Command) (bool, error) {
	text := cmd.Flags().Changed("subject") || cmd.Flags().Changed("body")
	if !text && cmd.Flags().Changed("text-language") {
		return false, errors.New("--text-language goes with --subject and --body")
	}
	return text, nil
}

func newSetOutOfOfficeCmd(o *apiOptions) *cobra.Command {
	var (
		f                          setFlags
		internalOnly, externalOnly bool
	)
	fields := []flagField{{"start", "start"}, {"end", "end"}, {"time-zone", "timeZone"}, {"audience", "audience"}}
	cmd := &cobra.Command{
		Use:   "out-of-office ADDRESS [flags]",
		Short: "Set a mailbox's out-of-office reply",
		Long: `Out-of-office sets the reply of the mailbox ADDRESS: it answers mail written to the mailbox
directly, each sender once per --repeat-days, from --start to --end. Both are a local time in
--time-zone (default: the mailbox's), "2026-12-20T09:00" or "2026-12-20", or an RFC 3339 time;
"" removes one.

--subject and --body give a text of your own in --text-language (default en), as a template
("mailroom autoreply templates" shows the shipped ones and what a template may use). It goes in
the texts for everyone: the internal list, and the external one when there is one.
--internal-only puts it in the internal list only (which still answers external senders while
there is no external list); --external-only in the external list only. Without texts of its own
the reply uses the shipped text in the language of the message or --language.

Employees set their own mailbox's reply; admins anyone's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if internalOnly && externalOnly {
				return errors.New("--internal-only and --external-only contradict each other")
			}
			return runSet(cmd, o, outOfOfficeKind, args[0], &f, fields, func(cmd *cobra.Command, patch map[string]any, current *replySetting) error {
				text, err := hasText(cmd)
				if err != nil || !text {
					if err == nil && (internalOnly || externalOnly) {
						err = errors.New("--internal-only and --external-only go with --subject and --body")
					}
					return err
				}
				if current == nil {
					current = &replySetting{}
				}
				if externalOnly {
					patch["external"], err = withText(cmd, &f, current.External)
					return err
				}
				internal, err := withText(cmd, &f, current.Internal)
				if err != nil {
					return err
				}
				patch["internal"] = internal
				if !internalOnly && len(current.External) > 0 {
					// External senders read only the external texts: they get the same one.
					i := slices.IndexFunc(internal, func(t replyText) bool { return strings.EqualFold(t.Language, f.textLanguage) })
					patch["external"] = putText(current.External, internal[i])
				}
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.String("start", "", `when it starts answering: "2026-12-20T09:00", a date, or RFC 3339 ("" for as soon as it is on)`)
	fs.String("end", "", `when it stops: the day you are back ("" for until it is switched off)`)
	fs.String("time-zone", "", `the IANA time zone of --start and --end ("" for the mailbox's)`)
	fs.String("audience", "", "who gets it: everyone or internal (senders of the organisation)")
	fs.BoolVar(&internalOnly, "internal-only", false, "--subject and --body are the text for senders of the organisation")
	fs.BoolVar(&externalOnly, "external-only", false, "--subject and --body are the text for senders outside the organisation")
	f.add(cmd, &fields, "start", "end", "time-zone", "audience", "internal-only", "external-only")
	return cmd
}

func newSetAcknowledgementCmd(o *apiOptions) *cobra.Command {
	var (
		f        setFlags
		calendar string
	)
	var fields []flagField
	cmd := &cobra.Command{
		Use:   "acknowledgement GROUP [flags]",
		Short: "Set a group's acknowledgement",
		Long: `Acknowledgement sets what the group GROUP answers to each new conversation: that the message
arrived and, with --promise-hours, by when it will be answered, counted in business hours on the
group's calendar. --calendar FILE.json gives the calendar ("-" reads standard input), replacing
the one there:

  {"timeZone": "Asia/Kuala_Lumpur",
   "hours": {"mon": ["09:00-12:30", "13:30-18:00"], "tue": ["09:00-18:00"]},
   "holidays": ["2026-12-25"]}

Without one the group works Monday to Friday, 09:00 to 17:00 UTC. --subject and --body give a
text of your own in --text-language.

The group's owners set it; admins any group's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSet(cmd, o, acknowledgementKind, args[0], &f, fields, func(cmd *cobra.Command, patch map[string]any, current *replySetting) error {
				if cmd.Flags().Changed("promise-hours") {
					n, _ := cmd.Flags().GetInt("promise-hours")
					setNumber(patch, "promiseHours", n, current != nil)
				}
				if calendar != "" {
					cal, err := readCalendar(cmd, calendar, current != nil)
					if err != nil {
						return err
					}
					patch["calendar"] = cal
				}
				return replaceTexts(cmd, &f, patch, current)
			})
		},
	}
	cmd.Flags().Int("promise-hours", 0, "business hours within which the group promises an answer (0 promises no time)")
	cmd.Flags().StringVar(&calendar, "calendar", "", `the group's business hours as JSON ("-" for standard input)`)
	f.add(cmd, &fields, "promise-hours", "calendar")
	return cmd
}

// readCalendar reads a calendar file. For a merge patch, every day and field the file leaves out
// is cleared, so that the calendar sent replaces the stored one rather than merging into it.
func readCalendar(cmd *cobra.Command, path string, patch bool) (map[string]any, error) {
	b, err := readJSONFile(cmd, path)
	if err != nil {
		return nil, err
	}
	var cal map[string]any
	if err := json.Unmarshal(b, &cal); err != nil {
		return nil, err
	}
	if !patch {
		return cal, nil
	}
	for _, field := range []string{"timeZone", "hours", "holidays"} {
		if _, ok := cal[field]; !ok {
			cal[field] = nil
		}
	}
	if hours, ok := cal["hours"].(map[string]any); ok {
		for _, d := range weekdays {
			if _, ok := hours[d]; !ok {
				hours[d] = nil
			}
		}
	}
	return cal, nil
}

// replaceTexts puts the text of --subject and --body in a setting's templates.
func replaceTexts(cmd *cobra.Command, f *setFlags, patch map[string]any, current *replySetting) error {
	text, err := hasText(cmd)
	if err != nil || !text {
		return err
	}
	var texts []replyText
	if current != nil {
		texts = current.Templates
	}
	patch["templates"], err = withText(cmd, f, texts)
	return err
}

func newSetClosedNoticeCmd(o *apiOptions) *cobra.Command {
	var (
		f       setFlags
		forward bool
	)
	fields := []flagField{{"successor", "successor"}}
	cmd := &cobra.Command{
		Use:   "closed-notice ADDRESS [flags]",
		Short: "Set a closed mailbox's notice",
		Long: `Closed-notice sets what the mailbox ADDRESS answers once it is closed: that it is no longer
read, and, with --successor, who to write to instead. --forward sends its mail on to the
successor as well. Admins only.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSet(cmd, o, closedNoticeKind, args[0], &f, fields, func(cmd *cobra.Command, patch map[string]any, current *replySetting) error {
				if cmd.Flags().Changed("forward") {
					patch["forward"] = forward
				}
				return replaceTexts(cmd, &f, patch, current)
			})
		},
	}
	cmd.Flags().String("successor", "", `who to write to instead ("" for nobody)`)
	cmd.Flags().BoolVar(&forward, "forward", false, "send the mailbox's mail on to the successor too (--forward=false stops it)")
	f.add(cmd, &fields, "successor", "forward")
	return cmd
}

// previewed is the admin API's answer to POST /autoreplies/preview.
type previewed struct {
	Replies []struct {
		Kind      string `json:"kind"`
		Recipient string `json:"recipient"`
		Responder string `json:"responder"`
		From      struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"from"`
		To      string `json:"to"`
		Verdict struct {
			Reply  bool   `json:"reply"`
			Rule   string `json:"rule"`
			Reason string `json:"reason"`
			Source string `json:"source"`
		} `json:"verdict"`
		Language string `json:"language"`
		Subject  string `json:"subject"`
		Body     string `json:"body"`
	} `json:"replies"`
}

func newPreviewCmd(o *apiOptions) *cobra.Command {
	env := &envelopeFlags{}
	var noLimits bool
	cmd := &cobra.Command{
		Use:   "preview FILE.eml --to ADDR [--to ADDR…] [--from ADDR] [--spam STATUS] [--at WHEN] [--no-limits]",
		Short: "Show the automatic replies a message would get",
		Long: `Preview sends a raw message (.eml; "-" reads standard input) to the admin API, which routes it
as mail received and plans its automatic replies, sending and recording nothing. It prints each
reply as it would go (From, To, Subject, Content-Language, then the body), or the rule that stops
it: "no reply from mailbox:ana@example.com: auto-submitted — …".

The envelope flags are explain's: --from (default: the From address; "" for a null sender),
--spf, --dkim, --dmarc, --spam and --virus (default PASS), --at (default now). --no-limits leaves
out the replies already sent, to see what a sender would get the first time.

Admins and auditors preview any message; employees mail to their own address, and group owners
mail to their groups.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var extra url.Values
			if noLimits {
				extra = url.Values{"limits": {"false"}}
			}
			resp, err := env.postWith(cmd, o, args[0], extra, "autoreplies", "preview")
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), resp.body)
			}
			var p previewed
			if err := decodeAnswer(resp.body, &p); err != nil {
				return err
			}
			return printPreview(cmd.OutOrStdout(), p, len(env.to))
		},
	}
	env.add(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&noLimits, "no-limits", false, "leave out the replies already sent to the sender")
	return cmd
}

// printPreview prints each reply as it would be sent, or why it would not be.
func printPreview(w io.Writer, p previewed, recipients int) error {
	pr := &printer{w: w}
	if len(p.Replies) == 0 {
		if recipients == 1 {
			pr.line("no automatic reply: nobody answers this recipient")
		} else {
			pr.line("no automatic reply: nobody answers these recipients")
		}
		return pr.err
	}
	for i, r := range p.Replies {
		if i > 0 {
			pr.line("")
		}
		v := r.Verdict
		if !v.Reply {
			reason := v.Reason
			// Most rules' reasons end with their source already.
			if v.Source != "" && !strings.HasSuffix(reason, "("+v.Source+")") {
				reason += " (" + v.Source + ")"
			}
			pr.line("no reply from %s: %s — %s", r.Responder, v.Rule, reason)
			continue
		}
		from := r.From.Address
		if r.From.Name != "" {
			from = r.From.Name + " <" + r.From.Address + ">"
		}
		pr.line("From: %s", from)
		pr.line("To: %s", r.To)
		pr.line("Subject: %s", r.Subject)
		pr.line("Content-Language: %s", r.Language)
		pr.line("")
		pr.line("%s", strings.TrimRight(r.Body, "\n"))
	}
	return pr.err
}

// templateCatalog is the admin API's answer to GET /autoreplies/templates.
type templateCatalog struct {
	Templates []struct {
		Kind     string `json:"kind"`
		Language string `json:"language"`
		Subject  string `json:"subject"`
		Body     string `json:"body"`
	} `json:"templates"`
	Languages []string `json:"languages"`
	Variables []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"variables"`
	Functions []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"functions"`
}

func newTemplatesCmd(o *apiOptions) *cobra.Command {
	var lang string
	cmd := &cobra.Command{
		Use:   "templates [KIND] [--language L]",
		Short: "Show the texts Mailroom ships, and what a text of your own may use",
		Long: `Templates prints the shipped texts (all of them, those of KIND — out-of-office,
acknowledgement or closed-notice — and those in --language), then the languages, and the
variables and functions a template may use.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if len(args) == 1 {
				kind := args[0]
				switch kind {
				case closedNoticeKind.name:
					kind = "closed-mailbox" // the API names the kind of reply, not the setting
				case outOfOfficeKind.name, acknowledgementKind.name, "closed-mailbox":
				default:
					return fmt.Errorf("%q is not a kind of automatic reply: use out-of-office, acknowledgement or closed-notice", kind)
				}
				q.Set("kind", kind)
			}
			if lang != "" {
				q.Set("language", lang)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var cat templateCatalog
			raw, err := c.getJSON(cmd.Context(), []string{"autoreplies", "templates"}, q, &cat)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return printCatalog(cmd.OutOrStdout(), cat)
		},
	}
	cmd.Flags().StringVar(&lang, "language", "", "only the texts in this language: en, zh-Hans, zh-Hant, ms or vi")
	return cmd
}

func printCatalog(w io.Writer, cat templateCatalog) error {
	for _, t := range cat.Templates {
		fmt.Fprintf(w, "== %s, %s\nSubject: %s\n\n%s\n\n", t.Kind, t.Language, t.Subject, strings.TrimRight(t.Body, "\n"))
	}
	fmt.Fprintf(w, "languages: %s\n\nvariables, as {{.Name}}:\n", list(cat.Languages))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range cat.Variables {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nfunctions:")
	for _, f := range cat.Functions {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Name, f.Description)
	}
	return tw.Flush()
}

func newReplyRulesCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "Show when Mailroom sends no automatic reply",
		Long: `Rules prints the rules that stop an automatic reply, in the order they are applied: the first
that objects is the one preview reports.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var page struct {
				Items []struct {
					ID          string `json:"id"`
					Source      string `json:"source"`
					Description string `json:"description"`
				} `json:"items"`
			}
			raw, err := c.getJSON(cmd.Context(), []string{"autoreplies", "rules"}, nil, &page)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			p := &printer{w: cmd.OutOrStdout()}
			for i, r := range page.Items {
				if i > 0 {
					p.line("")
				}
				p.line("%d. %s", i+1, r.ID)
				p.line("   %s", r.Description)
				p.line("   source: %s", r.Source)
			}
			return p.err
		},
	}
}
