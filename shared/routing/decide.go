package routing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

// Directory is what routing reads from the directory; directory.Store satisfies it.
type Directory interface {
	Domain(ctx context.Context, name string) (directory.Domain, error)
	AddressOwner(ctx context.Context, address string) (directory.Owner, error)
	Mailbox(ctx context.Context, address string) (directory.Mailbox, error)
	Alias(ctx context.Context, address string) (directory.Alias, error)
	Group(ctx context.Context, id string) (directory.Group, error)
	AllMembers(ctx context.Context, group, kind string) ([]directory.Member, error)
}

// ClosedMailboxes says what a closed mailbox does with its mail instead of bouncing it: its
// notice answers the sender, and forward says the successor gets the mail too. ok is false when
// the mailbox has no notice; it bounces then.
type ClosedMailboxes interface {
	ClosedNotice(ctx context.Context, mailbox string) (successor string, forward, ok bool, err error)
}

// Rules gives the rule set in force.
type Rules interface {
	RuleSet(ctx context.Context) (*RuleSet, error)
}

// Outcomes of one recipient.
const (
	Deliver    = "deliver"    // forwarded to its destinations (or kept in the archive only)
	Bounce     = "bounce"     // refused; the sender gets a delivery status notification
	Drop       = "drop"       // refused silently (archived, nobody told)
	Hold       = "hold"       // held for a group's moderators
	Quarantine = "quarantine" // kept aside by a rule; archived and flagged
	Loop       = "loop"       // already passed through this group or mailbox; not forwarded again
	Closed     = "closed"     // a closed mailbox's notice answers; its successor may get the mail
)

// Defaults of a Router.
const (
	DefaultMaxFanOut = 20000
	DefaultMaxHops   = 50
	maxCatchAllDepth = 1
)

// Router decides where a message goes. It reads the directory through a cache that lives for
// one Decide call, so a message to several recipients or to nested groups reads each item once.
type Router struct {
	Directory Directory
	Rules     Rules
	// MaxFanOut caps the final destinations of one recipient; a group larger than that is refused
	// (a bounce that says so) instead of sending a flood. Default DefaultMaxFanOut.
	MaxFanOut int
	// MaxHops refuses a message that has passed through this many Received or X-Mailroom-Loop
	// fields: a loop Mailroom's own marks did not catch. Default DefaultMaxHops.
	MaxHops int
	// Closed is what closed mailboxes do with their mail; nil bounces all of it.
	Closed ClosedMailboxes
}

// Message is what Decide needs about a received message; Facts.Recipient is ignored.
type Message struct {
	Facts
	// Recipients are the envelope recipients on served domains, as SES received them.
	Recipients []string
	// FromName is the author's display name, for "Name via Group".
	FromName string
	// Approved are groups whose moderators approved the message: their posting policy is not
	// applied again when it is released.
	Approved []string
}

// Decision is where a message goes and why. Delivery follows it exactly; explain shows it.
type Decision struct {
	MessageID  string      `json:"messageId"`
	RuleSet    int64       `json:"ruleSetVersion"`
	Recipients []Recipient `json:"recipients"`
	// Forwards are the sends to make, one per address the message passes through.
	Forwards []Forward `json:"forwards"`
	// Bounces are the delivery status notifications to send back to the sender.
	Bounces []Refusal `json:"bounces,omitempty"`
	// Holds are the groups the message waits in for moderation.
	Holds []Held `json:"holds,omitempty"`
	// Local are destinations on served domains with no forwarding: the archive is their mailbox.
	Local []string `json:"local,omitempty"`
	// Labels, Priority and SLA are the union of what rules and plus-addresses set.
	Labels      []string `json:"labels,omitempty"`
	Priority    string   `json:"priority,omitempty"`
	SLA         string   `json:"sla,omitempty"`
	Quarantined bool     `json:"quarantined,omitempty"`
}

// Recipient is the decision for one envelope recipient, with the steps that led to it.
type Recipient struct {
	Address string `json:"address"`
	// Kind is what the address turned out to be: mailbox, alias, group, catch-all or unknown.
	Kind string `json:"kind"`
	// Target is the mailbox address or group id the address reached.
	Target  string   `json:"target,omitempty"`
	Tag     string   `json:"tag,omitempty"`
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason,omitempty"`
	Steps   []string `json:"steps"`
	Rules   *Result  `json:"rules,omitempty"`
	// Destinations are the final addresses this recipient reached (before deduplication across
	// recipients); Skipped are members left out, and why.
	Destinations []string            `json:"destinations,omitempty"`
	Skipped      []directory.Skipped `json:"skipped,omitempty"`
}

// Forward is one message to send: the message as it passes through Via, to Destinations.
type Forward struct {
	// Via is the address the message is sent as when the author's domain is not ours, and the
	// loop mark it carries: a group's or mailbox's address.
	Via mail.Address `json:"via"`
	// Group is the group id when Via is a group's address.
	Group        string      `json:"group,omitempty"`
	Destinations []string    `json:"destinations"`
	Headers      [][2]string `json:"headers,omitempty"`
}

// Refusal is a recipient refused with a bounce.
type Refusal struct {
	Recipient string `json:"recipient"`
	Status    string `json:"status"` // enhanced status code, e.g. 5.7.1
	Reason    string `json:"reason"`
}

// Held is a message held for a group's moderators.
type Held struct {
	Recipient  string   `json:"recipient"`
	Group      string   `json:"group"`
	Moderators []string `json:"moderators"`
}

// Decide routes a message to each of its recipients. It changes nothing and sends nothing; an
// error means the directory or the rules could not be read, and the caller should retry.
func (r *Router) Decide(ctx context.Context, m Message) (Decision, error) {
	const op = "routing.Decide"
	run := &decider{
		Router: r, ctx: ctx, msg: m,
		dir:  newCache(r.Directory),
		sent: map[string]bool{},
		via:  map[string]int{},
		d:    Decision{MessageID: m.MessageID, Recipients: []Recipient{}, Forwards: []Forward{}},
	}
	run.marks = loopMarks(m.Header)
	for _, addr := range m.Recipients {
		rc, err := run.recipient(addr)
		if err != nil {
			return Decision{}, fault.Wrap(fault.KindOf(err), op, err)
		}
		run.d.Recipients = append(run.d.Recipients, rc)
	}
	return run.d, nil
}

var emptyRuleSet = &RuleSet{}

type decider struct {
	*Router
	ctx   context.Context
	msg   Message
	rules *RuleSet
	dir   *cache
	marks map[string]bool
	sent  map[string]bool // destinations already in a Forward or Local: each gets one copy
	via   map[string]int  // index in d.Forwards by Via address
	d     Decision
}

func (r *decider) maxFanOut() int {
	if r.MaxFanOut > 0 {
		return r.MaxFanOut
	}
	return DefaultMaxFanOut
}

func (r *decider) maxHops() int {
	if r.MaxHops > 0 {
		return r.MaxHops
	}
	return DefaultMaxHops
}

func (r *decider) recipient(raw string) (Recipient, error) {
	rc := Recipient{Address: strings.ToLower(strings.TrimSpace(raw)), Kind: "unknown", Steps: []string{}}
	addr, err := directory.NormalizeAddress(raw)
	if err != nil {
		return r.refuse(rc, Drop, "", fmt.Sprintf("%q is not an address Mailroom can route: %v", raw, err)), nil
	}
	rc.Address = addr
	if hops := hopCount(r.msg.Header); hops >= r.maxHops() {
		return r.refuse(rc, Drop, "", fmt.Sprintf("the message has passed %d hops (limit %d): a mail loop", hops, r.maxHops())), nil
	}
	return r.resolve(rc, addr, 0)
}

// resolve finds what addr is: a mailbox, an alias, a group, a plus-address of one of them, or
// unknown, in which case its domain's policy decides (catch-all resolves once more).
func (r *decider) resolve(rc Recipient, addr string, depth int) (Recipient, error) {
	owner, err := r.dir.AddressOwner(r.ctx, addr)
	if fault.Is(err, fault.NotFound) {
		if base, tag, ok := plusAddress(addr); ok {
			if owner, err = r.dir.AddressOwner(r.ctx, base); err == nil {
				rc.Tag = tag
				rc.Steps = append(rc.Steps, fmt.Sprintf("plus-address: %s is %s with the tag %q, kept as a label", addr, base, tag))
				r.label(tag)
				addr = base
			}
		}
	}
	if fault.Is(err, fault.NotFound) {
		return r.unknown(rc, addr, depth)
	}
	if err != nil {
		return rc, err
	}
	switch owner.Kind {
	case directory.KindAlias:
		a, err := r.dir.Alias(r.ctx, owner.ID)
		if err != nil {
			return rc, notFoundIsStale(err)
		}
		rc.Steps = append(rc.Steps, fmt.Sprintf("alias %s points to %s %s", a.Address, a.TargetKind, a.Target))
		if a.TargetKind == directory.KindGroup {
			return r.group(rc, a.TargetID, a.Target)
		}
		return r.mailbox(rc, a.TargetID)
	case directory.KindGroup:
		return r.group(rc, owner.ID, addr)
	default:
		return r.mailbox(rc, owner.ID)
	}
}

func (r *decider) unknown(rc Recipient, addr string, depth int) (Recipient, error) {
	domain := directory.DomainOf(addr)
	d, err := r.dir.Domain(r.ctx, domain)
	if fault.Is(err, fault.NotFound) {
		return r.refuse(rc, Drop, "", fmt.Sprintf("%s is not a domain Mailroom serves", domain)), nil
	}
	if err != nil {
		return rc, err
	}
	switch d.UnknownRecipients {
	case directory.UnknownCatchAll:
		if d.CatchAll != "" && depth < maxCatchAllDepth && d.CatchAll != addr {
			rc.Kind = "catch-all"
			rc.Steps = append(rc.Steps, fmt.Sprintf("%s is not a known address; %s sends unknown recipients to its catch-all %s", addr, domain, d.CatchAll))
			return r.resolve(rc, d.CatchAll, depth+1)
		}
		return r.refuse(rc, Bounce, "5.1.1", fmt.Sprintf("%s does not exist (and the catch-all of %s is not usable)", addr, domain)), nil
	case directory.UnknownDrop:
		return r.refuse(rc, Drop, "", fmt.Sprintf("%s is not a known address; %s drops mail for unknown recipients", addr, domain)), nil
	default:
		return r.refuse(rc, Bounce, "5.1.1", fmt.Sprintf("%s does not exist", addr)), nil
	}
}

func (r *decider) mailbox(rc Recipient, address string) (Recipient, error) {
	mb, err := r.dir.Mailbox(r.ctx, address)
	if err != nil {
		return rc, notFoundIsStale(err)
	}
	if rc.Kind != "catch-all" {
		rc.Kind = directory.KindMailbox
	}
	rc.Target = mb.Address
	switch mb.Status {
	case directory.StatusClosed:
		return r.closed(rc, mb)
	case directory.StatusSuspended:
		return r.refuse(rc, Bounce, "4.2.1", fmt.Sprintf("the mailbox %s is suspended and does not accept mail", mb.Address)), nil
	}
	rc.Steps = append(rc.Steps, fmt.Sprintf("mailbox %s is active", mb.Address))
	if ok, err := r.evaluate(&rc); !ok || err != nil {
		return rc, err
	}
	via := mail.Address{Name: mb.DisplayName, Address: mb.Address}
	if r.marks[mb.Address] {
		return r.refuse(rc, Loop, "", fmt.Sprintf("the message already passed through %s (X-Mailroom-Loop)", mb.Address)), nil
	}
	dests := mb.ForwardTo
	if len(dests) == 0 {
		rc.Steps = append(rc.Steps, fmt.Sprintf("%s has no forwarding destination: the archive is its mailbox", mb.Address))
		r.local(mb.Address)
		rc.Destinations = []string{mb.Address}
	} else {
		rc.Steps = append(rc.Steps, fmt.Sprintf("%s forwards to %s", mb.Address, strings.Join(dests, ", ")))
		rc.Destinations = slices.Clone(dests)
		r.forward(via, "", dests, rc.Rules)
	}
	r.forwardRules(rc.Rules, &rc)
	rc.Outcome = Deliver
	return rc, nil
}

// closed answers for a closed mailbox: its notice, and its successor when it forwards there;
// a bounce when it has no notice. Rules do not apply: the mailbox no longer takes mail.
func (r *decider) closed(rc Recipient, mb directory.Mailbox) (Recipient, error) {
	var (
		successor   string
		forward, ok bool
		err         error
	)
	if r.Closed != nil {
		successor, forward, ok, err = r.Closed.ClosedNotice(r.ctx, mb.Address)
		if err != nil {
			return rc, err
		}
	}
	if !ok {
		return r.refuse(rc, Bounce, "5.1.1", fmt.Sprintf("the mailbox %s is closed", mb.Address)), nil
	}
	rc.Outcome, rc.Reason = Closed, fmt.Sprintf("the mailbox %s is closed; its notice answers", mb.Address)
	rc.Steps = append(rc.Steps, rc.Reason)
	if !forward {
		return rc, nil
	}
	if r.marks[mb.Address] {
		return r.refuse(rc, Loop, "", fmt.Sprintf("the message already passed through %s (X-Mailroom-Loop)", mb.Address)), nil
	}
	rc.Steps = append(rc.Steps, fmt.Sprintf("%s forwards to its successor %s", mb.Address, successor))
	rc.Destinations = []string{successor}
	r.forward(mail.Address{Name: mb.DisplayName, Address: mb.Address}, "", rc.Destinations, nil)
	return rc, nil
}

func (r *decider) group(rc Recipient, id, address string) (Recipient, error) {
	g, err := r.dir.Group(r.ctx, id)
	if err != nil {
		return rc, notFoundIsStale(err)
	}
	if rc.Kind != "catch-all" {
		rc.Kind = directory.KindGroup
	}
	rc.Target = g.ID
	rc.Steps = append(rc.Steps, fmt.Sprintf("%s is the address of group %q (%s)", address, g.Name, g.ID))
	if r.marks[address] {
		return r.refuse(rc, Loop, "", fmt.Sprintf("the message already passed through group %s (X-Mailroom-Loop: %s)", g.ID, address)), nil
	}
	if g.Expires != "" && r.msg.ReceivedAt.After(expiryEnd(g.Expires)) {
		return r.refuse(rc, Bounce, "5.1.1", fmt.Sprintf("the group %s expired on %s", address, g.Expires)), nil
	}
	ex, err := r.expand(g.ID)
	if err != nil {
		return rc, err
	}
	allowed, outcome, why := r.posting(g, ex)
	if slices.Contains(r.msg.Approved, g.ID) {
		allowed, outcome, why = true, "", fmt.Sprintf("approved by a moderator of %s", g.ID)
	}
	switch {
	case outcome == Hold:
		rc.Outcome, rc.Reason = Hold, why
		rc.Steps = append(rc.Steps, why)
		r.d.Holds = append(r.d.Holds, Held{Recipient: rc.Address, Group: g.ID, Moderators: moderators(g)})
		return rc, nil
	case !allowed:
		return r.refuse(rc, r.refusal(), "5.7.1", why), nil
	}
	rc.Steps = append(rc.Steps, why)
	if ok, err := r.evaluate(&rc); !ok || err != nil {
		return rc, err
	}
	dests := make([]string, 0, len(ex.destinations))
	for _, d := range ex.destinations {
		if !r.isSender(d, ex) {
			dests = append(dests, d)
		}
	}
	if excluded := len(ex.destinations) - len(dests); excluded > 0 {
		rc.Steps = append(rc.Steps, fmt.Sprintf("the sender %s is left out of its own post (%d destination(s))", r.msg.Sender, excluded))
	}
	if len(dests) > r.maxFanOut() {
		return r.refuse(rc, Bounce, "5.3.4", fmt.Sprintf("group %s reaches %d destinations, more than the limit of %d", g.ID, len(dests), r.maxFanOut())), nil
	}
	rc.Steps = append(rc.Steps, fmt.Sprintf("group %s expands through %d group(s) to %d destination(s)", g.ID, len(ex.groups), len(dests)))
	rc.Destinations = dests
	rc.Skipped = ex.skipped
	var remote []string
	for _, d := range dests {
		if ex.local[d] {
			r.local(d)
		} else {
			remote = append(remote, d)
		}
	}
	r.forward(mail.Address{Name: g.Name, Address: address}, g.ID, remote, rc.Rules)
	r.forwardRules(rc.Rules, &rc)
	rc.Outcome = Deliver
	return rc, nil
}

// ruleSet reads the rules the first time a recipient needs them: mail for unknown or refused
// recipients costs no read of the rules.
func (r *decider) ruleSet() (*RuleSet, error) {
	if r.rules == nil {
		r.rules = emptyRuleSet
		if r.Rules != nil {
			rs, err := r.Rules.RuleSet(r.ctx)
			if err != nil {
				r.rules = nil
				return nil, err
			}
			r.rules = rs
		}
		r.d.RuleSet = r.rules.Version
	}
	return r.rules, nil
}

// evaluate runs the rules for this recipient and applies a final verdict; it reports whether
// delivery goes on.
func (r *decider) evaluate(rc *Recipient) (bool, error) {
	rules, err := r.ruleSet()
	if err != nil {
		return false, err
	}
	f := r.msg.Facts
	f.Recipient = rc.Address
	res := rules.Evaluate(f)
	rc.Rules = &res
	for _, l := range res.Labels {
		r.label(l)
	}
	if res.Priority != "" && r.d.Priority == "" {
		r.d.Priority = res.Priority
	}
	if res.SLA != "" && r.d.SLA == "" {
		r.d.SLA = res.SLA
	}
	switch res.Verdict {
	case "reject":
		reason := res.Reason
		if reason == "" {
			reason = "refused by the organisation's mail rules"
		}
		*rc = r.refuse(*rc, r.refusal(), "5.7.1", fmt.Sprintf("rule %s rejects it: %s", res.StoppedBy, reason))
		rc.Reason = reason
		return false, nil
	case "drop":
		*rc = r.refuse(*rc, Drop, "", fmt.Sprintf("rule %s drops it", res.StoppedBy))
		return false, nil
	case "quarantine":
		r.d.Quarantined = true
		rc.Outcome, rc.Reason = Quarantine, fmt.Sprintf("rule %s quarantines it", res.StoppedBy)
		rc.Steps = append(rc.Steps, rc.Reason)
		return false, nil
	}
	return true, nil
}

// forwardRules adds the rules' forward actions as sends through the recipient's address.
func (r *decider) forwardRules(res *Result, rc *Recipient) {
	if res == nil {
		return
	}
	for _, t := range res.Forward {
		if t.Address != "" {
			rc.Steps = append(rc.Steps, fmt.Sprintf("a rule also forwards it to %s", t.Address))
			r.forward(mail.Address{Address: rc.Address}, "", []string{t.Address}, res)
			continue
		}
		ex, err := r.expand(t.Group)
		if err != nil {
			rc.Steps = append(rc.Steps, fmt.Sprintf("a rule forwards it to group %s, which cannot be read: %v", t.Group, err))
			continue
		}
		g, _ := r.dir.Group(r.ctx, t.Group)
		rc.Steps = append(rc.Steps, fmt.Sprintf("a rule also forwards it to group %s (%d destination(s))", t.Group, len(ex.destinations)))
		via := mail.Address{Name: g.Name, Address: rc.Address}
		if len(g.Addresses) > 0 {
			via.Address = g.Addresses[0]
		}
		var remote []string
		for _, d := range ex.destinations {
			if r.isSender(d, ex) {
				continue
			}
			if ex.local[d] {
				r.local(d)
			} else {
				remote = append(remote, d)
			}
		}
		r.forward(via, t.Group, remote, res)
	}
}

// refusal is how a refused post is answered: a bounce, unless the sender cannot be trusted to
// be the one who sent it (no envelope sender, failed DMARC, spam or virus), when a bounce would
// be backscatter to an innocent address.
func (r *decider) refusal() string {
	v := r.msg.Verdicts
	if r.msg.EnvelopeFrom == "" || v.DMARC == VerdictFail || v.Spam == VerdictFail || v.Virus == VerdictFail {
		return Drop
	}
	return Bounce
}

func (r *decider) refuse(rc Recipient, outcome, status, reason string) Recipient {
	rc.Outcome, rc.Reason = outcome, reason
	rc.Steps = append(rc.Steps, reason)
	if outcome == Bounce {
		if r.msg.EnvelopeFrom == "" {
			rc.Outcome = Drop
			rc.Steps = append(rc.Steps, "no bounce: the message has no envelope sender")
		} else {
			r.d.Bounces = append(r.d.Bounces, Refusal{Recipient: rc.Address, Status: status, Reason: reason})
		}
	}
	return rc
}

func (r *decider) label(l string) {
	if !slices.Contains(r.d.Labels, l) {
		r.d.Labels = append(r.d.Labels, l)
	}
}

func (r *decider) local(addr string) {
	if r.sent[addr] {
		return
	}
	r.sent[addr] = true
	r.d.Local = append(r.d.Local, addr)
}

// forward adds destinations to the send through via, leaving out any destination that already
// gets a copy: one message reaches each address once, however many recipients lead there.
func (r *decider) forward(via mail.Address, group string, dests []string, res *Result) {
	i, ok := r.via[via.Address]
	if !ok {
		f := Forward{Via: via, Group: group, Destinations: []string{}}
		if res != nil {
			for _, h := range res.Headers {
				f.Headers = append(f.Headers, [2]string{h.Name, h.Value})
			}
		}
		r.d.Forwards = append(r.d.Forwards, f)
		i = len(r.d.Forwards) - 1
		r.via[via.Address] = i
	}
	for _, d := range dests {
		if r.sent[d] {
			continue
		}
		r.sent[d] = true
		r.d.Forwards[i].Destinations = append(r.d.Forwards[i].Destinations, d)
	}
}

// isSender reports whether a destination is the sender's own: their address, or a forwarding
// destination of their mailbox.
func (r *decider) isSender(dest string, ex *expansion) bool {
	s := r.msg.Sender
	return s != "" && (dest == s || ex.forwardsOf[s][dest])
}

// plusAddress splits "user+tag@domain" into "user@domain" and "tag".
func plusAddress(addr string) (base, tag string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "", false
	}
	local, domain := addr[:at], addr[at:]
	i := strings.IndexByte(local, '+')
	if i <= 0 || i == len(local)-1 {
		return "", "", false
	}
	return local[:i] + domain, local[i+1:], true
}

// notFoundIsStale turns a NotFound read of something an address index pointed at into a
// transient fault: the directory is changing under us, and a retry will see it settled.
func notFoundIsStale(err error) error {
	if fault.Is(err, fault.NotFound) {
		return fault.Wrap(fault.Transient, "routing", err)
	}
	return err
}

// expiryEnd is the end of a group's last day (UTC): mail on that day still reaches it.
func expiryEnd(day string) time.Time {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return time.Time{}.AddDate(9999, 0, 0)
	}
	return t.AddDate(0, 0, 1)
}

// hopCount is the number of Received and X-Mailroom-Loop fields.
func hopCount(h mail.Header) int {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.Name, "Received") || strings.EqualFold(f.Name, LoopField) {
			n++
		}
	}
	return n
}

// LoopField marks a message forwarded by Mailroom with the address it passed through.
const LoopField = "X-Mailroom-Loop"

func loopMarks(h mail.Header) map[string]bool {
	marks := map[string]bool{}
	for _, v := range h.Values(LoopField) {
		for _, a := range strings.Split(v, ",") {
			if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
				marks[a] = true
			}
		}
	}
	return marks
}
