package sla

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// Store keeps conversations, the Message-IDs threaded to them, the index of conversations due
// and the rows reports read. DynamoDB's adapter is shared/dynamo.Conversations.
type Store interface {
	// Threads returns the conversations each Message-ID (without angle brackets) belongs to.
	Threads(ctx context.Context, messageIDs []string) (map[string][]string, error)
	Conversation(ctx context.Context, id string) (Conversation, error)
	// Put writes c and threads messageIDs to it, in one write: a new conversation when expect is
	// 0 (Conflict if it exists), else only when the stored version is expect (Conflict if not).
	// The due index follows c.Next(), the breach index c.Breached while waiting.
	Put(ctx context.Context, c Conversation, expect int64, messageIDs []string) error
	// Due returns up to limit conversations whose Next is at or before t, earliest first.
	Due(ctx context.Context, t time.Time, limit int) ([]Conversation, error)
	// Opened returns a queue's conversations opened within [from, to).
	Opened(ctx context.Context, queue string, from, to time.Time) ([]Conversation, error)
	// Breached returns a queue's conversations waiting past their deadline.
	Breached(ctx context.Context, queue string) ([]Conversation, error)
}

// Service opens and follows conversations, runs their clocks and reports on them.
type Service struct {
	Store    Store
	Policies Policies
	Now      func() time.Time
	NewID    func() string
}

// Message is one message of a conversation, as the inbound path or SES's send events saw it.
type Message struct {
	// ID identifies the event for idempotency: the Message-ID (without angle brackets), or
	// "<ses message id>@ses" when the message had none.
	MessageID  string
	InReplyTo  []string
	References []string
	// SESMessageIDs are the ids SES gave the copies Mailroom sent on: replies to those copies
	// name them.
	SESMessageIDs []string
	From          string // the author's address, lower case
	Subject       string
	Language      string
	At            time.Time
}

// maxThreadLookups bounds the Message-IDs looked up for one message: its parent and the latest
// references.
const maxThreadLookups = 10

// Received applies a message delivered to a queue (a group or mailbox) with a policy: named is
// a routing rule's sla action, else the queue's own policy applies. A staff member's message that
// threads into a conversation of this queue answers it; any other message opens a conversation
// or continues its own. ok is false when no policy applies. A message already applied (a retry)
// changes nothing.
func (s *Service) Received(ctx context.Context, queue, named string, m Message, staff bool) (Conversation, bool, error) {
	p, ok, err := s.Policies.ForQueue(ctx, queue, named)
	if err != nil || !ok {
		return Conversation{}, false, err
	}
	k, err := s.clock(ctx, p)
	if err != nil {
		return Conversation{}, false, err
	}
	var out Conversation
	err = s.retry(func() error {
		seen, err := s.Store.Threads(ctx, []string{m.MessageID})
		if err != nil {
			return err
		}
		if ids := seen[m.MessageID]; len(ids) > 0 {
			for _, id := range ids {
				if c, err := s.Store.Conversation(ctx, id); err == nil && c.Queue == queue {
					out = c
					return nil // applied already
				}
			}
		}
		c, found, err := s.thread(ctx, queue, p, m)
		if err != nil {
			return err
		}
		if !found {
			if staff && len(m.InReplyTo)+len(m.References) > 0 {
				// A colleague's reply in a thread Mailroom does not follow: not a request.
				return errNotTracked
			}
			out = s.open(k, queue, p, m)
			return s.Store.Put(ctx, out, 0, s.keys(m))
		}
		expect := c.Version
		if staff && c.Customer != m.From {
			k.respond(&c, m.At)
		} else {
			k.customer(&c, m.At)
			c.LastMessageID = m.MessageID
		}
		c.LastMessageAt, c.Version = m.At.UTC(), expect+1
		out = c
		return s.Store.Put(ctx, c, expect, s.keys(m))
	})
	if errors.Is(err, errNotTracked) {
		return Conversation{}, false, nil
	}
	return out, err == nil, err
}

var errNotTracked = errors.New("not tracked")

// StaffSent applies a message staff sent, seen in SES's send events or through the journal
// address: an answer to every conversation it threads into. It returns the conversations it
// answered.
func (s *Service) StaffSent(ctx context.Context, m Message) ([]Conversation, error) {
	ids, err := s.threadIDs(ctx, m)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		// The subject token, where the conversation's policy follows it.
		t := tokenIn(m.Subject)
		if t == "" {
			return nil, nil
		}
		c, err := s.Store.Conversation(ctx, t)
		if fault.Is(err, fault.NotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := s.Policies.Policy(ctx, c.Policy)
		if err != nil || !p.SubjectToken {
			return nil, err
		}
		ids = []string{t}
	}
	var out []Conversation
	for _, id := range ids {
		err := s.retry(func() error {
			c, err := s.Store.Conversation(ctx, id)
			if err != nil {
				return err
			}
			if c.Customer == m.From {
				return nil // the customer's own copy
			}
			seen, err := s.Store.Threads(ctx, []string{m.MessageID})
			if err != nil {
				return err
			}
			if slices.Contains(seen[m.MessageID], id) {
				out = append(out, c)
				return nil // applied already
			}
			k, err := s.clockOf(ctx, c)
			if err != nil {
				return err
			}
			expect := c.Version
			k.respond(&c, m.At)
			c.LastMessageAt, c.Version = m.At.UTC(), expect+1
			if err := s.Store.Put(ctx, c, expect, s.keys(m)); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
		if err != nil && !fault.Is(err, fault.NotFound) {
			return out, err
		}
	}
	return out, nil
}

// Thread records more Message-IDs of a conversation: the ids SES gave the copies Mailroom sent.
func (s *Service) Thread(ctx context.Context, id string, messageIDs []string) error {
	if len(messageIDs) == 0 {
		return nil
	}
	return s.retry(func() error {
		c, err := s.Store.Conversation(ctx, id)
		if err != nil {
			return err
		}
		expect := c.Version
		c.Version++
		return s.Store.Put(ctx, c, expect, threadKeys(messageIDs))
	})
}

// Pause stops a conversation's clock while it waits on the customer.
func (s *Service) Pause(ctx context.Context, id string) (Conversation, error) {
	return s.change(ctx, id, func(k clock, c *Conversation, now time.Time) error {
		if c.State != Waiting {
			return fault.New(fault.Conflict, "sla.Pause", "conversation %s is %s, not waiting", id, c.State)
		}
		k.pause(c, now)
		return nil
	})
}

// Resume starts a paused conversation's clock again.
func (s *Service) Resume(ctx context.Context, id string) (Conversation, error) {
	return s.change(ctx, id, func(k clock, c *Conversation, now time.Time) error {
		if c.State != Paused {
			return fault.New(fault.Conflict, "sla.Resume", "conversation %s is %s, not paused", id, c.State)
		}
		k.resume(c, now)
		return nil
	})
}

func (s *Service) change(ctx context.Context, id string, f func(k clock, c *Conversation, now time.Time) error) (Conversation, error) {
	var out Conversation
	// f's refusal (not waiting, not paused) is a Conflict for the caller, but not one a retry
	// cures: kept apart from the write's.
	var refused error
	err := s.retry(func() error {
		c, err := s.Store.Conversation(ctx, id)
		if err != nil {
			return err
		}
		k, err := s.clockOf(ctx, c)
		if err != nil {
			return err
		}
		expect := c.Version
		if refused = f(k, &c, s.now()); refused != nil {
			return nil
		}
		c.Version = expect + 1
		out = c
		return s.Store.Put(ctx, c, expect, nil)
	})
	if refused != nil {
		return Conversation{}, refused
	}
	return out, err
}

// Promise is when a group promises to answer a message received at received under its policy,
// and its business hours: what its acknowledgement says.
func (s *Service) Promise(ctx context.Context, group string, received time.Time) (time.Time, string, bool, error) {
	p, ok, err := s.Policies.ForQueue(ctx, QueueOfGroup(group), "")
	if err != nil || !ok {
		return time.Time{}, "", false, err
	}
	cal, err := s.Policies.Calendar(ctx, p)
	if err != nil {
		return time.Time{}, "", false, err
	}
	return cal.Add(received, p.Target(TargetFirst)), cal.String(), true, nil
}

// Notice kinds.
const (
	NoticeWarning = "warning"
	NoticeBreach  = "breach"
)

// Notifier tells people about conversations. Each method must send a notice once however often
// it is called for the same conversation, kind and clock start (c.ID, kind, c.Target, c.Since):
// the sweep may run twice, or be retried.
type Notifier interface {
	// Escalate tells p's escalation contacts that c is nearing its deadline (NoticeWarning) or
	// past it (NoticeBreach).
	Escalate(ctx context.Context, c Conversation, p Policy, kind string) error
	// Hold tells the customer that the answer will take longer: by when they will hear.
	Hold(ctx context.Context, c Conversation, p Policy, by time.Time) error
}

// SweepReport says what a sweep did.
type SweepReport struct {
	Looked   int `json:"looked"`
	Warnings int `json:"warnings"`
	Breaches int `json:"breaches"`
	Holding  int `json:"holding"`
	Skipped  int `json:"skipped"` // changed by someone else meanwhile; the next sweep sees them
}

// DefaultSweepLimit bounds the conversations one sweep handles; the rest wait for the next.
const DefaultSweepLimit = 500

// Sweep finds the conversations due a warning or past their deadline, reading only those, and
// tells escalation contacts and customers. Notices go before the conversation is marked, so a
// sweep that stops in between sends nothing twice (the Notifier is once-only) and loses nothing.
func (s *Service) Sweep(ctx context.Context, n Notifier, limit int) (SweepReport, error) {
	if limit <= 0 {
		limit = DefaultSweepLimit
	}
	now := s.now()
	due, err := s.Store.Due(ctx, now, limit)
	if err != nil {
		return SweepReport{}, err
	}
	var rep SweepReport
	var errs []error
	for _, c := range due {
		rep.Looked++
		if err := s.sweepOne(ctx, n, c, now, &rep); err != nil {
			// Changed by someone else meanwhile (the next sweep sees it), or its policy was
			// deleted (nothing to hold it to): neither fails the sweep.
			if fault.Is(err, fault.Conflict) || fault.Is(err, fault.NotFound) {
				rep.Skipped++
				continue
			}
			errs = append(errs, fmt.Errorf("conversation %s: %w", c.ID, err))
		}
	}
	return rep, errors.Join(errs...)
}

func (s *Service) sweepOne(ctx context.Context, n Notifier, c Conversation, now time.Time, rep *SweepReport) error {
	expect := c.Version
	if c.State == Waiting {
		k, err := s.clockOf(ctx, c)
		if err != nil {
			return err
		}
		p := k.p
		if !c.Warned && !now.Before(c.WarnAt) {
			if err := n.Escalate(ctx, c, p, NoticeWarning); err != nil {
				return err
			}
			c.Warned = true
			rep.Warnings++
		}
		if !c.Breached && !now.Before(c.Due) {
			if err := n.Escalate(ctx, c, p, NoticeBreach); err != nil {
				return err
			}
			c.Breached, c.Warned = true, true
			c.Breaches++
			rep.Breaches++
			if p.HoldingReply && !c.HoldingSent && c.Customer != "" {
				if err := n.Hold(ctx, c, p, k.cal.Add(now, p.holding(c.Target)).UTC()); err != nil {
					return err
				}
				c.HoldingSent = true
				rep.Holding++
			}
		}
	}
	c.Version = expect + 1
	return s.Store.Put(ctx, c, expect, nil)
}

// Report is how a queue kept its promises over a period.
type Report struct {
	Queue string    `json:"queue"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Conversations opened in the period; Answered of them have a first response.
	Conversations int `json:"conversations"`
	Answered      int `json:"answered"`
	// WithinTarget got their first response within the target; Share is that of all opened.
	WithinTarget int     `json:"withinTarget"`
	Share        float64 `json:"shareWithinTarget"`
	// MedianHours and P90Hours are business hours to the first response, over the answered.
	MedianHours float64 `json:"medianFirstResponseHours"`
	P90Hours    float64 `json:"p90FirstResponseHours"`
	// Breaches are the queue's conversations waiting past their deadline now.
	Breaches []string `json:"currentBreaches"`
}

// Report computes a queue's report for [from, to).
func (s *Service) Report(ctx context.Context, queue string, from, to time.Time) (Report, error) {
	if !to.After(from) {
		return Report{}, fault.InvalidField("sla.Report", "to", "must be after from")
	}
	convs, err := s.Store.Opened(ctx, queue, from, to)
	if err != nil {
		return Report{}, err
	}
	r := Report{Queue: queue, From: from.UTC(), To: to.UTC(), Conversations: len(convs), Breaches: []string{}}
	var firsts []time.Duration
	for _, c := range convs {
		if c.FirstResponseAt.IsZero() {
			continue
		}
		r.Answered++
		firsts = append(firsts, c.FirstResponse)
		if c.WithinTarget {
			r.WithinTarget++
		}
	}
	if r.Conversations > 0 {
		r.Share = math.Round(float64(r.WithinTarget)/float64(r.Conversations)*1000) / 1000
	}
	slices.Sort(firsts)
	r.MedianHours, r.P90Hours = percentileHours(firsts, 50), percentileHours(firsts, 90)
	breached, err := s.Store.Breached(ctx, queue)
	if err != nil {
		return Report{}, err
	}
	for _, c := range breached {
		r.Breaches = append(r.Breaches, c.ID)
	}
	return r, nil
}

// percentileHours is the nearest-rank percentile of sorted durations, in hours to 0.01.
func percentileHours(sorted []time.Duration, pct int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(pct) / 100 * float64(len(sorted))))
	d := sorted[max(rank, 1)-1]
	return math.Round(d.Hours()*100) / 100
}

func (s *Service) open(k clock, queue string, p Policy, m Message) Conversation {
	c := Conversation{
		ID: s.newID(), Queue: queue, Policy: p.ID, Customer: m.From, Subject: m.Subject,
		OpenedAt: m.At.UTC(), LastMessageID: m.MessageID, LastMessageAt: m.At.UTC(), Language: m.Language,
		Version: 1,
	}
	k.start(&c, m.At, TargetFirst)
	return c
}

// thread finds the conversation of this queue a message belongs to: by In-Reply-To and
// References, then, when the policy says so, by the token in its subject.
func (s *Service) thread(ctx context.Context, queue string, p Policy, m Message) (Conversation, bool, error) {
	ids, err := s.threadIDs(ctx, m)
	if err != nil {
		return Conversation{}, false, err
	}
	if p.SubjectToken {
		if t := tokenIn(m.Subject); t != "" && !slices.Contains(ids, t) {
			ids = append(ids, t)
		}
	}
	for _, id := range ids {
		c, err := s.Store.Conversation(ctx, id)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return Conversation{}, false, err
		}
		if c.Queue == queue {
			return c, true, nil
		}
	}
	return Conversation{}, false, nil
}

// threadIDs returns the conversations the message's parents belong to, nearest parent first.
func (s *Service) threadIDs(ctx context.Context, m Message) ([]string, error) {
	var parents []string
	for i := len(m.InReplyTo) - 1; i >= 0; i-- {
		parents = append(parents, m.InReplyTo[i])
	}
	for i := len(m.References) - 1; i >= 0; i-- {
		parents = append(parents, m.References[i])
	}
	parents = threadKeys(parents)
	if len(parents) > maxThreadLookups {
		parents = parents[:maxThreadLookups]
	}
	if len(parents) == 0 {
		return nil, nil
	}
	found, err := s.Store.Threads(ctx, parents)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parents {
		for _, id := range found[p] {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// keys are the Message-IDs a message threads to its conversation.
func (s *Service) keys(m Message) []string {
	return threadKeys(append([]string{m.MessageID}, m.SESMessageIDs...))
}

// threadKeys are Message-IDs as the store keeps them: lower case, unique, and a message SES sent
// by its SES id alone, since SES writes its Message-ID as <id@region.amazonses.com> and the
// region's name is not worth knowing.
func threadKeys(ids []string) []string {
	var out []string
	for _, id := range ids {
		id = strings.ToLower(strings.Trim(strings.TrimSpace(id), "<>"))
		if local, domain, ok := strings.Cut(id, "@"); ok && (domain == "amazonses.com" || strings.HasSuffix(domain, ".amazonses.com")) {
			id = local
		}
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

var tokenPattern = regexp.MustCompile(`\[#(C[0-9A-Z]{9})\]`)

func tokenIn(subject string) string {
	if m := tokenPattern.FindStringSubmatch(subject); m != nil {
		return m[1]
	}
	return ""
}

// clockOf is the clock of a conversation's policy.
func (s *Service) clockOf(ctx context.Context, c Conversation) (clock, error) {
	p, err := s.Policies.Policy(ctx, c.Policy)
	if err != nil {
		return clock{}, err
	}
	return s.clock(ctx, p)
}

func (s *Service) clock(ctx context.Context, p Policy) (clock, error) {
	cal, err := s.Policies.Calendar(ctx, p)
	if err != nil {
		return clock{}, err
	}
	return clock{p: p, cal: cal}, nil
}

// retry runs f again when a conditional write lost to another writer.
func (s *Service) retry(f func() error) error {
	var err error
	for range 5 {
		if err = f(); !fault.Is(err, fault.Conflict) {
			return err
		}
	}
	return err
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// idAlphabet leaves out letters read as digits (I, L, O, U).
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	var b [9]byte
	_, _ = rand.Read(b[:])
	id := []byte("C")
	for _, x := range b {
		id = append(id, idAlphabet[int(x)%len(idAlphabet)])
	}
	return string(id)
}
