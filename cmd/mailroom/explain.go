package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/shared/mail"
)

// explanation is the admin API's answer to POST /routing/explain.
type explanation struct {
	Facts struct {
		Sender       string `json:"sender"`
		EnvelopeFrom string `json:"envelopeFrom"`
		Internal     bool   `json:"internal"`
		Subject      string `json:"subject"`
		Size         int64  `json:"size"`
		Verdicts     struct {
			Spam  string `json:"spam"`
			Virus string `json:"virus"`
			SPF   string `json:"spf"`
			DKIM  string `json:"dkim"`
			DMARC string `json:"dmarc"`
		} `json:"verdicts"`
		ReceivedAt string `json:"receivedAt"`
	} `json:"facts"`
	Decision struct {
		RuleSetVersion int64             `json:"ruleSetVersion"`
		Recipients     []routedRecipient `json:"recipients"`
		Forwards       []struct {
			Via struct {
				Name    string `json:"name"`
				Address string `json:"address"`
			} `json:"via"`
			Group        string      `json:"group"`
			Destinations []string    `json:"destinations"`
			Headers      [][2]string `json:"headers"`
		} `json:"forwards"`
		Bounces []struct {
			Recipient string `json:"recipient"`
			Status    string `json:"status"`
			Reason    string `json:"reason"`
		} `json:"bounces"`
		Holds []struct {
			Recipient  string   `json:"recipient"`
			Group      string   `json:"group"`
			Moderators []string `json:"moderators"`
		} `json:"holds"`
		Local       []string `json:"local"`
		Labels      []string `json:"labels"`
		Priority    string   `json:"priority"`
		SLA         string   `json:"sla"`
		Quarantined bool     `json:"quarantined"`
	} `json:"decision"`
}

// routedRecipient is the decision for one envelope recipient.
type routedRecipient struct {
	Address string   `json:"address"`
	Kind    string   `json:"kind"`
	Target  string   `json:"target"`
	Tag     string   `json:"tag"`
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason"`
	Steps   []string `json:"steps"`
	Rules   *struct {
		Rules []struct {
			ID       string   `json:"id"`
			Name     string   `json:"name"`
			Priority int      `json:"priority"`
			Matched  bool     `json:"matched"`
			Skipped  string   `json:"skipped"`
			Because  []string `json:"because"`
			Applied  []string `json:"applied"`
		} `json:"rules"`
		Verdict   string `json:"verdict"`
		StoppedBy string `json:"stoppedBy"`
	} `json:"rules"`
	Destinations []string `json:"destinations"`
	Skipped      []struct {
		Address string `json:"address"`
		Reason  string `json:"reason"`
	} `json:"skipped"`
}

// shownDestinations is how many destinations a line lists before it counts the rest.
const shownDestinations = 5

// verdictFlags are the SES verdicts explain can be told, in the order they are shown.
var verdictFlags = []string{"spf", "dkim", "dmarc", "spam", "virus"}

func newExplainCmd() *cobra.Command {
	o := &apiOptions{}
	env := &envelopeFlags{}
	cmd := &cobra.Command{
		Use:   "explain FILE.eml --to ADDR [--to ADDR…] [--from ADDR] [--spf STATUS] [--at WHEN]",
		Short: "Show where Mailroom would route a message, and why",
		Long: `Explain sends a raw message (.eml; "-" reads standard input) to the admin API, which decides
where it would go exactly as it does for mail received, through the directory, the groups'
posting policies and the routing rules, and sends nothing. It prints, for each --to recipient,
the outcome, the steps, the rules that matched and why, and the destinations; then the copies
that would be sent, the bounces, the holds, and the labels, priority and SLA rules set.

--from is the envelope sender (default: the From address; --from "" is a null sender, as a
bounce has). --spf, --dkim, --dmarc, --spam and --virus are SES's verdicts: PASS (the default),
FAIL, GRAY, PROCESSING_FAILED or DISABLED. --at is when the message arrives, for time
conditions: an RFC 3339 time, a date, or an age such as 2h (default: now).` + apiHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := env.post(cmd, o, args[0], "routing", "explain")
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), resp.body)
			}
			var e explanation
			if err := decodeAnswer(resp.body, &e); err != nil {
				return err
			}
			return printExplanation(cmd.OutOrStdout(), e)
		},
	}
	o.addFlags(cmd)
	env.add(cmd)
	return cmd
}

// envelopeFlags are the envelope of a message sent to the API to be decided (explain, preview):
// its recipients, sender, SES verdicts and arrival.
type envelopeFlags struct {
	to       []string
	from, at string
	verdicts map[string]*string
}

func (e *envelopeFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&e.to, "to", nil, "an envelope recipient (repeat for several)")
	fs.StringVar(&e.from, "from", "", `the envelope sender (default: the From address; "" for a null sender)`)
	e.verdicts = map[string]*string{}
	for _, name := range verdictFlags {
		check := name
		if name != "spam" && name != "virus" {
			check = strings.ToUpper(name)
		}
		e.verdicts[name] = fs.String(name, "", "SES's "+check+" verdict (default PASS)")
	}
	fs.StringVar(&e.at, "at", "", "when the message arrives: RFC 3339, a date, or an age such as 2h (default: now)")
}

// query is the envelope as the API reads it.
func (e *envelopeFlags) query(cmd *cobra.Command) (url.Values, error) {
	if len(e.to) == 0 {
		return nil, fmt.Errorf("--to is required: the envelope recipient, e.g. --to sales@example.com")
	}
	q := url.Values{"to": e.to}
	if cmd.Flags().Changed("from") {
		q.Set("from", e.from)
	}
	for _, name := range verdictFlags {
		if v := *e.verdicts[name]; v != "" {
			q.Set(name, strings.ToUpper(v))
		}
	}
	if e.at != "" {
		t, err := parseWhen(e.at, time.Now())
		if err != nil {
			return nil, fmt.Errorf("--at: %w", err)
		}
		q.Set("at", t.Format(time.RFC3339))
	}
	return q, nil
}

// post sends the message in file to the API path with the envelope, plus extra query values.
func (e *envelopeFlags) post(cmd *cobra.Command, o *apiOptions, file string, path ...string) (*apiResponse, error) {
	return e.postWith(cmd, o, file, nil, path...)
}

func (e *envelopeFlags) postWith(cmd *cobra.Command, o *apiOptions, file string, extra url.Values, path ...string) (*apiResponse, error) {
	q, err := e.query(cmd)
	if err != nil {
		return nil, err
	}
	for k, vs := range extra {
		q[k] = vs
	}
	body, err := readMessage(cmd, file)
	if err != nil {
		return nil, err
	}
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	return c.do(cmd.Context(), apiRequest{
		method: http.MethodPost, path: path, query: q, body: body, contentType: "message/rfc822",
	})
}

// readMessage reads a raw message from path, or from standard input for "-", refusing what is
// clearly not a message before sending it.
func readMessage(cmd *cobra.Command, path string) ([]byte, error) {
	b, path, err := readInput(cmd, path)
	if err != nil {
		return nil, err
	}
	m, err := mail.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(m.Header) == 0 {
		return nil, fmt.Errorf("%s is not a mail message: it has no header fields (expected RFC 5322 text such as an .eml file)", path)
	}
	return b, nil
}

// readInput reads path, or standard input for "-", and names what it read for messages.
func readInput(cmd *cobra.Command, path string) ([]byte, string, error) {
	if path == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		return b, "standard input", err
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, path, fmt.Errorf("%s: no such file", path)
	}
	return b, path, err
}

// printExplanation prints the decision as people read it: the message, then each recipient's
// outcome and how it came about, then what would be sent.
func printExplanation(w io.Writer, e explanation) error {
	p := &printer{w: w}
	f := e.Facts
	sender := orDash(f.Sender)
	if f.Internal {
		sender += " (internal)"
	} else if f.Sender != "" {
		sender += " (external)"
	}
	envelope := f.EnvelopeFrom
	if envelope == "" {
		envelope = "<> (null sender)"
	}
	v := f.Verdicts
	p.line("message: %q from %s, %d bytes", f.Subject, sender, f.Size)
	p.line("envelope from: %s, received %s", envelope, stamp(f.ReceivedAt))
	p.line("verdicts: SPF %s, DKIM %s, DMARC %s, spam %s, virus %s", v.SPF, v.DKIM, v.DMARC, v.Spam, v.Virus)

	d := e.Decision
	for _, rc := range d.Recipients {
		p.line("")
		printRecipient(p, rc)
	}

	p.line("")
	if len(d.Forwards) == 0 {
		p.line("forwards: none")
	} else {
		p.line("forwards:")
	}
	for _, fw := range d.Forwards {
		via := fw.Via.Address
		if fw.Via.Name != "" {
			via = fw.Via.Name + " <" + fw.Via.Address + ">"
		}
		if fw.Group != "" {
			via += " (group " + fw.Group + ")"
		}
		p.line("  via %s → %s", via, destinations(fw.Destinations))
		for _, h := range fw.Headers {
			p.line("    adds %s: %s", h[0], h[1])
		}
	}
	if len(d.Bounces) > 0 {
		p.line("bounces:")
		for _, b := range d.Bounces {
			p.line("  %s: %s %s", b.Recipient, b.Status, b.Reason)
		}
	}
	if len(d.Holds) > 0 {
		p.line("holds:")
		for _, h := range d.Holds {
			p.line("  %s in group %s, for %s to approve", h.Recipient, h.Group, list(h.Moderators))
		}
	}
	if len(d.Local) > 0 {
		p.line("kept in the archive only: %s", list(d.Local))
	}
	if len(d.Labels) > 0 {
		p.line("labels: %s", list(d.Labels))
	}
	if d.Priority != "" {
		p.line("priority: %s", d.Priority)
	}
	if d.SLA != "" {
		p.line("SLA policy: %s", d.SLA)
	}
	if d.Quarantined {
		p.line("quarantined: yes")
	}
	p.line("rule set: version %d", d.RuleSetVersion)
	return p.err
}

func printRecipient(p *printer, rc routedRecipient) {
	p.line("%s: %s", rc.Address, rc.Outcome)
	reached := rc.Kind
	if rc.Target != "" {
		reached += " " + rc.Target
	}
	p.line("  reached: %s", reached)
	if rc.Tag != "" {
		p.line("  tag: %s (kept as a label)", rc.Tag)
	}
	if rc.Reason != "" {
		p.line("  reason: %s", rc.Reason)
	}
	p.line("  steps:")
	for _, s := range rc.Steps {
		p.line("    %s", s)
	}
	if res := rc.Rules; res != nil {
		matched := 0
		for _, t := range res.Rules {
			if t.Matched {
				matched++
			}
		}
		if len(res.Rules) == 0 {
			p.line("  rules: none in force")
		} else {
			p.line("  rules: %d of %s matched", matched, plural(len(res.Rules), "rule", "rules"))
		}
		for _, t := range res.Rules {
			name := fmt.Sprintf("%s (%s, priority %d)", t.ID, t.Name, t.Priority)
			switch {
			case t.Skipped != "":
				p.line("    %s: skipped, %s", name, t.Skipped)
			case !t.Matched:
				// The last condition evaluated is the one that decided.
				why := ""
				if n := len(t.Because); n > 0 {
					why = ": " + t.Because[n-1]
				}
				p.line("    %s: no match%s", name, why)
			default:
				p.line("    %s: matched", name)
				for _, b := range t.Because {
					p.line("      because %s", b)
				}
				for _, a := range t.Applied {
					p.line("      applied %s", a)
				}
			}
		}
		if res.StoppedBy != "" {
			p.line("    evaluation ended at rule %s", res.StoppedBy)
		}
	}
	if len(rc.Destinations) > 0 {
		p.line("  destinations: %s", destinations(rc.Destinations))
	}
	for _, s := range rc.Skipped {
		p.line("  skipped %s (%s)", s.Address, s.Reason)
	}
}

// destinations counts addresses and lists the first few.
func destinations(addrs []string) string {
	n := plural(len(addrs), "destination", "destinations")
	if len(addrs) == 0 {
		return n
	}
	shown := addrs[:min(len(addrs), shownDestinations)]
	s := n + ": " + list(shown)
	if rest := len(addrs) - len(shown); rest > 0 {
		s += ", and " + strconv.Itoa(rest) + " more"
	}
	return s
}

// printer writes lines and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
}
