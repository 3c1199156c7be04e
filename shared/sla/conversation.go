package sla

import (
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
)

// States of a conversation.
const (
	Waiting  = "waiting"  // on staff: the clock runs
	Paused   = "paused"   // waiting on the customer: the clock stands still
	Answered = "answered" // staff answered last; the next customer message starts the clock
)

// Targets.
const (
	TargetFirst = "first"
	TargetNext  = "next"
)

// Conversation is one exchange with a customer that needs answers within a policy's targets.
type Conversation struct {
	ID string `json:"id"`
	// Queue is the group or mailbox that answers: "group:support", "mailbox:ana@example.com".
	Queue    string    `json:"queue"`
	Policy   string    `json:"policy"`
	Customer string    `json:"customer"`
	Subject  string    `json:"subject"`
	OpenedAt time.Time `json:"openedAt"`
	State    string    `json:"state"`
	// Target is the target the clock runs against: first or next.
	Target string `json:"target"`
	// Since is when the running clock started (zero unless waiting); Used the business time
	// used of the target before the last pause.
	Since time.Time     `json:"since,omitzero"`
	Used  time.Duration `json:"used"`
	// WarnAt and Due are the instants of the warning and of the deadline, while waiting.
	WarnAt      time.Time `json:"warnAt,omitzero"`
	Due         time.Time `json:"due,omitzero"`
	Warned      bool      `json:"warned,omitempty"`
	Breached    bool      `json:"breached,omitempty"`
	HoldingSent bool      `json:"holdingSent,omitempty"`
	// FirstResponseAt and FirstResponse (business time) are set by the first staff answer;
	// WithinTarget says whether it came within the first-response target.
	FirstResponseAt time.Time     `json:"firstResponseAt,omitzero"`
	FirstResponse   time.Duration `json:"firstResponse,omitempty"`
	WithinTarget    bool          `json:"withinTarget,omitempty"`
	Responses       int           `json:"responses"`
	// Breaches counts the deadlines missed over the conversation's life.
	Breaches int `json:"breaches,omitempty"`
	// LastMessageID is the customer's latest Message-ID, for threading replies to them;
	// LastMessageAt when staff or customer last wrote.
	LastMessageID string    `json:"lastMessageId,omitempty"`
	LastMessageAt time.Time `json:"lastMessageAt"`
	// Language is the customer's language as their first message gave it, for holding replies.
	Language string `json:"language,omitempty"`
	Version  int64  `json:"version"`
}

// Next is when the sweep must look at the conversation again: the warning, then the deadline;
// zero when nothing is pending.
func (c Conversation) Next() time.Time {
	if c.State != Waiting {
		return time.Time{}
	}
	if !c.Warned {
		return c.WarnAt
	}
	if !c.Breached {
		return c.Due
	}
	return time.Time{}
}

// Token is the conversation's subject token: "[#C7K2QX9PA]".
func (c Conversation) Token() string { return "[#" + c.ID + "]" }

// clock does a conversation's business-time arithmetic under a policy and its calendar.
type clock struct {
	p   Policy
	cal *calendar.Compiled
}

// start runs the clock of a target from at.
func (k clock) start(c *Conversation, at time.Time, target string) {
	c.State, c.Target, c.Since, c.Used = Waiting, target, at, 0
	c.Warned, c.Breached, c.HoldingSent = false, false, false
	k.schedule(c)
}

// schedule sets the warning and the deadline from what is left of the target.
func (k clock) schedule(c *Conversation) {
	total := k.p.Target(c.Target)
	c.Due = k.cal.Add(c.Since, max(0, total-c.Used)).UTC()
	c.WarnAt = k.cal.Add(c.Since, max(0, k.p.warnAfter(c.Target)-c.Used)).UTC()
	if c.Used >= k.p.warnAfter(c.Target) {
		c.Warned = true // already past it before the pause: warned then
	}
}

// used is the business time used of the current target at at.
func (k clock) used(c Conversation, at time.Time) time.Duration {
	if c.State != Waiting {
		return c.Used
	}
	return c.Used + k.cal.Between(c.Since, at)
}

func (k clock) pause(c *Conversation, at time.Time) {
	if c.State != Waiting {
		return
	}
	c.Used = k.used(*c, at)
	c.State, c.Since, c.WarnAt, c.Due = Paused, time.Time{}, time.Time{}, time.Time{}
}

func (k clock) resume(c *Conversation, at time.Time) {
	if c.State != Paused {
		return
	}
	c.State, c.Since = Waiting, at
	k.schedule(c)
}

// respond records a staff answer at at.
func (k clock) respond(c *Conversation, at time.Time) {
	if c.State == Answered {
		c.Responses++
		return
	}
	used := k.used(*c, at)
	if c.Target == TargetFirst && c.FirstResponseAt.IsZero() {
		c.FirstResponseAt, c.FirstResponse = at.UTC(), used
		c.WithinTarget = used <= k.p.Target(TargetFirst)
	}
	c.Responses++
	c.State, c.Since, c.Used, c.WarnAt, c.Due = Answered, time.Time{}, 0, time.Time{}, time.Time{}
}

// customer records a customer message at at: after an answer it starts the next-response
// clock; while paused it resumes the clock; while waiting it changes nothing.
func (k clock) customer(c *Conversation, at time.Time) {
	switch c.State {
	case Answered:
		k.start(c, at, TargetNext)
	case Paused:
		k.resume(c, at)
	}
}

// Queue names a group's or a mailbox's queue.
func Queue(kind, id string) string { return kind + ":" + id }

func splitQueue(q string) (kind, id string) {
	kind, id, _ = strings.Cut(q, ":")
	return kind, id
}

// QueueOfGroup is a group's queue.
func QueueOfGroup(id string) string { return Queue(directory.KindGroup, id) }
