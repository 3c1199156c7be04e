package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// memStore is the Store in memory.
type memStore struct {
	convs   map[string]Conversation
	threads map[string][]string
}

func newMemStore() *memStore {
	return &memStore{convs: map[string]Conversation{}, threads: map[string][]string{}}
}

func (m *memStore) Threads(_ context.Context, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, id := range ids {
		if c := m.threads[id]; len(c) > 0 {
			out[id] = slices.Clone(c)
		}
	}
	return out, nil
}

func (m *memStore) Conversation(_ context.Context, id string) (Conversation, error) {
	c, ok := m.convs[id]
	if !ok {
		return c, fault.New(fault.NotFound, "mem", "no conversation %s", id)
	}
	return c, nil
}

func (m *memStore) Put(_ context.Context, c Conversation, expect int64, ids []string) error {
	old, ok := m.convs[c.ID]
	switch {
	case expect == 0 && ok, expect != 0 && (!ok || old.Version != expect):
		return fault.New(fault.Conflict, "mem", "version")
	}
	m.convs[c.ID] = c
	for _, id := range ids {
		if !slices.Contains(m.threads[id], c.ID) {
			m.threads[id] = append(m.threads[id], c.ID)
		}
	}
	return nil
}

func (m *memStore) Due(_ context.Context, t time.Time, limit int) ([]Conversation, error) {
	var out []Conversation
	for _, c := range m.convs {
		if n := c.Next(); !n.IsZero() && !n.After(t) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Next().Before(out[j].Next()) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) Opened(_ context.Context, queue string, from, to time.Time) ([]Conversation, error) {
	var out []Conversation
	for _, c := range m.convs {
		if c.Queue == queue && !c.OpenedAt.Before(from) && c.OpenedAt.Before(to) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenedAt.Before(out[j].OpenedAt) })
	return out, nil
}

func (m *memStore) Breached(_ context.Context, queue string) ([]Conversation, error) {
	var out []Conversation
	for _, c := range m.convs {
		if c.Queue == queue && c.State == Waiting && c.Breached {
			out = append(out, c)
		}
	}
	return out, nil
}

// memSettings holds policies and calendars.
type memSettings map[string]any

func (s memSettings) Settings(_ context.Context, kind string) ([]directory.Setting, int64, error) {
	var out []directory.Setting
	for k, v := range s {
		if strings.HasPrefix(k, kind+"/") {
			body, _ := json.Marshal(v)
			out = append(out, directory.Setting{Kind: kind, ID: strings.TrimPrefix(k, kind+"/"), Body: body})
		}
	}
	return out, 1, nil
}

func (s memSettings) Setting(ctx context.Context, kind, id string) (directory.Setting, error) {
	v, ok := s[kind+"/"+id]
	if !ok {
		return directory.Setting{}, fault.New(fault.NotFound, "mem", "no %s %s", kind, id)
	}
	body, _ := json.Marshal(v)
	return directory.Setting{Kind: kind, ID: id, Body: body}, nil
}

// kl is the support team's calendar: Kuala Lumpur, 09:00–12:00 and 13:00–18:00 on weekdays,
// Christmas off.
var kl = CalendarSetting{ID: "kl", Calendar: calendar.Calendar{TimeZone: "Asia/Kuala_Lumpur",
	Hours: map[string][]string{
		"mon": {"09:00-12:00", "13:00-18:00"}, "tue": {"09:00-12:00", "13:00-18:00"}, "wed": {"09:00-12:00", "13:00-18:00"},
		"thu": {"09:00-12:00", "13:00-18:00"}, "fri": {"09:00-12:00", "13:00-18:00"},
	},
	Holidays: []string{"2026-12-25"}}}

func klTime(t *testing.T, s string) time.Time {
	t.Helper()
	loc, _ := time.LoadLocation("Asia/Kuala_Lumpur")
	at, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

type recorded struct {
	kind, id string
	by       time.Time
}

// notes is a Notifier that remembers what it was asked to send, once per key as the real one.
type notes struct {
	sent []recorded
	keys map[string]bool
	fail bool
}

func (n *notes) once(key string, r recorded) error {
	if n.fail {
		return fault.New(fault.Transient, "notes", "SES is down")
	}
	if n.keys == nil {
		n.keys = map[string]bool{}
	}
	if !n.keys[key] {
		n.keys[key] = true
		n.sent = append(n.sent, r)
	}
	return nil
}

func (n *notes) Escalate(_ context.Context, c Conversation, _ Policy, kind string) error {
	return n.once(fmt.Sprint(c.ID, kind, c.Target, c.Since), recorded{kind: kind, id: c.ID})
}

func (n *notes) Hold(_ context.Context, c Conversation, _ Policy, by time.Time) error {
	return n.once(fmt.Sprint(c.ID, "holding", c.Target, c.Since), recorded{kind: "holding", id: c.ID, by: by})
}

func (n *notes) count(kind string) int {
	k := 0
	for _, r := range n.sent {
		if r.kind == kind {
			k++
		}
	}
	return k
}

type world struct {
	svc   *Service
	store *memStore
	now   time.Time
}

func newWorld(t *testing.T, p Policy) *world {
	t.Helper()
	w := &world{store: newMemStore()}
	settings := memSettings{CalendarKind + "/kl": kl, PolicyKind + "/" + p.ID: p}
	n := 0
	w.svc = &Service{Store: w.store, Policies: Policies{Settings: settings},
		Now: func() time.Time { return w.now },
		NewID: func() string {
			n++
			return fmt.Sprintf("C%09d", n)
		}}
	return w
}

var support = Policy{ID: "standard", Calendar: "kl", FirstResponseHours: 8, NextResponseHours: 4,
	WarnPercent: 75, Escalation: []string{"lead@example.com"}, Groups: []string{"support"}, HoldingReply: true}

func customerMessage(id string, at time.Time, parents ...string) Message {
	return Message{MessageID: id, References: parents, From: "bo@client.test", Subject: "Broken invoice", At: at}
}

func TestConversationLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, support)
	q := QueueOfGroup("support")
	// Friday 16:00 in Kuala Lumpur: 2 business hours that day, 6 more on Monday.
	opened := klTime(t, "2026-11-27 16:00")
	c, ok, err := w.svc.Received(ctx, q, "", customerMessage("m1@client.test", opened), false)
	if err != nil || !ok {
		t.Fatalf("received: %v %v", ok, err)
	}
	if want := klTime(t, "2026-11-30 16:00"); !c.Due.Equal(want) {
		t.Errorf("due %s, want Monday 16:00 (8 business hours, lunch excluded)", c.Due.In(want.Location()))
	}
	if want := klTime(t, "2026-11-30 14:00"); !c.WarnAt.Equal(want) {
		t.Errorf("warning at %s, want Monday 14:00 (75%% = 6 hours)", c.WarnAt.In(want.Location()))
	}
	// A retry of the same message changes nothing.
	again, _, err := w.svc.Received(ctx, q, "", customerMessage("m1@client.test", opened), false)
	if err != nil || again.Version != c.Version || len(w.store.convs) != 1 {
		t.Fatalf("a retry changed the conversation: %+v %v", again, err)
	}
	// The customer writes again before an answer: the clock runs on.
	c2, _, err := w.svc.Received(ctx, q, "", customerMessage("m2@client.test", klTime(t, "2026-11-30 09:30"), "m1@client.test"), false)
	if err != nil || c2.ID != c.ID || !c2.Due.Equal(c.Due) {
		t.Fatalf("a follow-up moved the deadline or opened another conversation: %+v %v", c2, err)
	}

	n := &notes{}
	w.now = klTime(t, "2026-11-30 13:59")
	if rep, err := w.svc.Sweep(ctx, n, 0); err != nil || rep.Looked != 0 {
		t.Fatalf("nothing is due yet: %+v %v", rep, err)
	}
	w.now = klTime(t, "2026-11-30 14:30")
	for range 2 { // the sweep runs twice: the warning goes once
		if _, err := w.svc.Sweep(ctx, n, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n.count(NoticeWarning) != 1 || n.count(NoticeBreach) != 0 {
		t.Fatalf("after the warning time: %+v", n.sent)
	}
	w.now = klTime(t, "2026-11-30 16:00")
	for range 2 {
		if _, err := w.svc.Sweep(ctx, n, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n.count(NoticeBreach) != 1 || n.count("holding") != 1 {
		t.Fatalf("after the deadline: %+v", n.sent)
	}
	// The holding reply promises the target again from now: 8 business hours from Monday 16:00.
	if want := klTime(t, "2026-12-01 16:00"); !n.sent[2].by.Equal(want) {
		t.Errorf("holding reply promises %s, want %s", n.sent[2].by, want)
	}
	rep, _ := w.svc.Report(ctx, q, klTime(t, "2026-11-01 00:00"), klTime(t, "2026-12-01 00:00"))
	if len(rep.Breaches) != 1 {
		t.Errorf("report breaches %v, want the conversation", rep.Breaches)
	}

	// Staff answer through SES: the clock stops, the first response is recorded.
	answered, err := w.svc.StaffSent(ctx, Message{MessageID: "r1@example.com", InReplyTo: []string{"m2@client.test"},
		SESMessageIDs: []string{"0100abc"}, From: "ana@example.com", At: klTime(t, "2026-11-30 17:00")})
	if err != nil || len(answered) != 1 {
		t.Fatalf("staff answer: %v %+v", err, answered)
	}
	a := answered[0]
	if a.State != Answered || a.FirstResponse != 9*time.Hour || a.WithinTarget || !a.Next().IsZero() {
		t.Errorf("answered %+v", a)
	}
	// The customer answers the reply, naming SES's Message-ID: the next-response clock starts.
	c3, _, err := w.svc.Received(ctx, q, "", customerMessage("m3@client.test", klTime(t, "2026-12-01 10:00"), "<0100abc@email.amazonses.com>"), false)
	if err != nil || c3.ID != c.ID || c3.State != Waiting || c3.Target != TargetNext {
		t.Fatalf("customer reply to the answer: %+v %v", c3, err)
	}
	if want := klTime(t, "2026-12-01 15:00"); !c3.Due.Equal(want) {
		t.Errorf("next-response due %s, want %s (4 business hours)", c3.Due, want)
	}

	// Waiting on the customer: paused, the clock stands still across a weekend.
	w.now = klTime(t, "2026-12-01 11:00")
	p, err := w.svc.Pause(ctx, c.ID)
	if err != nil || p.State != Paused || p.Used != time.Hour {
		t.Fatalf("pause: %+v %v", p, err)
	}
	if _, err := w.svc.Pause(ctx, c.ID); !fault.Is(err, fault.Conflict) {
		t.Errorf("a second pause: %v", err)
	}
	w.now = klTime(t, "2026-12-07 09:00")
	r, err := w.svc.Resume(ctx, c.ID)
	if err != nil || r.State != Waiting {
		t.Fatalf("resume: %+v %v", r, err)
	}
	if want := klTime(t, "2026-12-07 12:00"); !r.Due.Equal(want) {
		t.Errorf("after the pause, due %s, want %s (3 hours left)", r.Due, want)
	}

	rep, err = w.svc.Report(ctx, q, klTime(t, "2026-11-01 00:00"), klTime(t, "2026-12-01 00:00"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conversations != 1 || rep.Answered != 1 || rep.WithinTarget != 0 || rep.MedianHours != 9 || len(rep.Breaches) != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestStaffAndAutomaticMessages(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, support)
	q := QueueOfGroup("support")
	at := klTime(t, "2026-11-30 10:00")
	c, _, _ := w.svc.Received(ctx, q, "", customerMessage("m1@client.test", at), false)
	// A colleague replying to the group in the thread answers the conversation.
	staff := Message{MessageID: "s1@example.com", InReplyTo: []string{"m1@client.test"}, From: "ana@example.com", At: at.Add(time.Hour)}
	got, ok, err := w.svc.Received(ctx, q, "", staff, true)
	if err != nil || !ok || got.ID != c.ID || got.State != Answered || got.FirstResponse != time.Hour {
		t.Fatalf("staff reply through the group: %+v %v %v", got, ok, err)
	}
	// A colleague's reply in a thread Mailroom does not follow opens nothing.
	_, ok, err = w.svc.Received(ctx, q, "", Message{MessageID: "s2@example.com", InReplyTo: []string{"elsewhere@example.com"}, From: "ana@example.com", At: at}, true)
	if err != nil || ok {
		t.Errorf("an untracked staff reply opened a conversation: %v %v", ok, err)
	}
	// A queue without a policy tracks nothing; a routing rule's policy applies anywhere.
	if _, ok, _ := w.svc.Received(ctx, QueueOfGroup("sales"), "", customerMessage("m9@client.test", at), false); ok {
		t.Error("a queue without a policy opened a conversation")
	}
	if c, ok, _ := w.svc.Received(ctx, QueueOfGroup("sales"), "standard", customerMessage("m10@client.test", at), false); !ok || c.Policy != "standard" {
		t.Error("a rule's policy did not apply")
	}
}

func TestSubjectTokenFallback(t *testing.T) {
	ctx := context.Background()
	p := support
	p.SubjectToken = true
	w := newWorld(t, p)
	q := QueueOfGroup("support")
	at := klTime(t, "2026-11-30 10:00")
	c, _, _ := w.svc.Received(ctx, q, "", customerMessage("m1@client.test", at), false)
	staff := Message{MessageID: "s1@example.com", From: "ana@example.com", Subject: "Re: Broken invoice " + c.Token(), At: at.Add(time.Hour)}
	if _, err := w.svc.StaffSent(ctx, staff); err != nil {
		t.Fatal(err)
	}
	// The customer's mail system dropped In-Reply-To and References; the token threads it.
	m := customerMessage("m2@client.test", at.Add(2*time.Hour))
	m.Subject = "RE: Broken invoice " + c.Token()
	got, _, err := w.svc.Received(ctx, q, "", m, false)
	if err != nil || got.ID != c.ID || got.Target != TargetNext {
		t.Fatalf("token fallback: %+v %v", got, err)
	}
	w2 := newWorld(t, support) // the token is off by default
	c2, _, _ := w2.svc.Received(ctx, q, "", customerMessage("m1@client.test", at), false)
	m.Subject = "RE: Broken invoice " + c2.Token()
	if got, _, _ := w2.svc.Received(ctx, q, "", m, false); got.ID == c2.ID {
		t.Error("the subject token threaded with the fallback off")
	}
}

func TestSweepRetriesAfterAFailedNotice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, support)
	q := QueueOfGroup("support")
	w.svc.Received(ctx, q, "", customerMessage("m1@client.test", klTime(t, "2026-11-30 09:00")), false)
	w.now = klTime(t, "2026-12-01 09:00")
	n := &notes{fail: true}
	if _, err := w.svc.Sweep(ctx, n, 0); err == nil {
		t.Fatal("a failed notice was not reported")
	}
	n.fail = false
	if _, err := w.svc.Sweep(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
	if n.count(NoticeWarning) != 1 || n.count(NoticeBreach) != 1 || n.count("holding") != 1 {
		t.Errorf("after the retry: %+v", n.sent)
	}
}

func TestPromise(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, support)
	by, hours, ok, err := w.svc.Promise(ctx, "support", klTime(t, "2026-12-24 17:00"))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	// One hour on Christmas Eve, Christmas off, then the weekend: Monday 28th, 09:00 + 7 hours.
	if want := klTime(t, "2026-12-28 17:00"); !by.Equal(want) {
		t.Errorf("promise %s, want %s", by, want)
	}
	if !strings.Contains(hours, "Asia/Kuala_Lumpur") {
		t.Errorf("hours %q", hours)
	}
	if _, _, ok, _ := w.svc.Promise(ctx, "sales", time.Now()); ok {
		t.Error("a group without a policy promised")
	}
}

func TestPolicyValidation(t *testing.T) {
	ctx := context.Background()
	dir := fakeDir{settings: memSettings{CalendarKind + "/kl": kl}}
	kind := PolicySetting(dir)
	cases := []struct{ body, field string }{
		{`{"firstResponseHours":0}`, "firstResponseHours"},
		{`{"firstResponseHours":8,"nextResponseHours":-1}`, "nextResponseHours"},
		{`{"firstResponseHours":8,"warnPercent":100}`, "warnPercent"},
		{`{"firstResponseHours":8,"calendar":"nowhere"}`, "calendar"},
		{`{"firstResponseHours":8,"escalation":["not an address"]}`, "escalation[0]"},
		{`{"firstResponseHours":8,"groups":["sales"]}`, "groups[0]"},
		{`{"firstResponseHours":8,"mailboxes":["bo@example.com"]}`, "mailboxes[0]"},
		{`{"firstResponseHours":8,"id":"other"}`, "id"},
	}
	for _, c := range cases {
		_, err := kind.Validate(ctx, "standard", []byte(c.body))
		var f *fault.Error
		if !fault.Is(err, fault.Invalid) || !errorsAs(err, &f) || f.Field != c.field {
			t.Errorf("%s: %v, want an invalid %s", c.body, err, c.field)
		}
	}
	if _, err := kind.Validate(ctx, "standard", []byte(`{"firstResponseHours":8,"calendar":"kl","groups":["support"],"escalation":["Lead@Example.com"]}`)); err != nil {
		t.Errorf("a good policy: %v", err)
	}
	if _, err := CalendarSettingKind().Validate(ctx, "kl", []byte(`{"timeZone":"Asia/Kuala_Lumpur","hours":{"mon":["18:00-09:00"]}}`)); !fault.Is(err, fault.Invalid) {
		t.Errorf("an overnight interval: %v", err)
	}
}

type fakeDir struct{ settings memSettings }

func (f fakeDir) Mailbox(_ context.Context, a string) (directory.Mailbox, error) {
	return directory.Mailbox{}, fault.New(fault.NotFound, "fake", "no mailbox %s", a)
}

func (f fakeDir) Group(_ context.Context, id string) (directory.Group, error) {
	if id == "support" {
		return directory.Group{ID: id}, nil
	}
	return directory.Group{}, fault.New(fault.NotFound, "fake", "no group %s", id)
}

func (f fakeDir) Setting(ctx context.Context, kind, id string) (directory.Setting, error) {
	return f.settings.Setting(ctx, kind, id)
}

func errorsAs(err error, f **fault.Error) bool { return errors.As(err, f) }
