package autoreply

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// fakeSettings holds settings by kind and id.
type fakeSettings map[string]any

func (f fakeSettings) Setting(_ context.Context, kind, id string) (directory.Setting, error) {
	v, ok := f[kind+"/"+id]
	if !ok {
		return directory.Setting{}, fault.New(fault.NotFound, "fake", "no %s %s", kind, id)
	}
	body, _ := json.Marshal(v)
	return directory.Setting{Kind: kind, ID: id, Body: body, Meta: directory.Meta{Version: 1}}, nil
}

// memLedger is the ledger in memory.
type memLedger map[string][]Sent

func (l memLedger) Sent(_ context.Context, responder, sender string, since time.Time) ([]Sent, error) {
	var out []Sent
	for _, s := range l[responder+"/"+sender] {
		if !s.At.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (l memLedger) Record(_ context.Context, responder, sender string, s Sent, _ time.Time) error {
	l[responder+"/"+sender] = append(l[responder+"/"+sender], s)
	return nil
}

var planAt = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC) // a Monday, 11:00 in Kuala Lumpur

func planMessage(t testing.TB, internal bool, extra ...string) (routing.Message, *mail.Message) {
	t.Helper()
	raw := "From: Bo Customer <bo@client.test>\r\nTo: ana@example.com, support@example.com\r\nSubject: Quote\r\n" +
		"Message-ID: <q1@client.test>\r\n" + strings.Join(append(extra, ""), "\r\n") + "\r\nHello\r\n"
	m, err := mail.Parse(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	msg := routing.Message{Facts: routing.Facts{
		MessageID: "ses-1", Sender: "bo@client.test", SenderDomain: "client.test", EnvelopeFrom: "bo@client.test",
		Internal: internal, Subject: m.Subject, Header: m.Header, ReceivedAt: planAt,
		Verdicts: routing.Verdicts{Spam: "PASS", Virus: "PASS", SPF: "PASS", DKIM: "PASS", DMARC: "PASS"},
	}}
	return msg, m
}

func decision(rcs ...routing.Recipient) routing.Decision { return routing.Decision{Recipients: rcs} }

var (
	toAna     = routing.Recipient{Address: "ana@example.com", Kind: directory.KindMailbox, Target: "ana@example.com", Outcome: routing.Deliver}
	toSupport = routing.Recipient{Address: "support@example.com", Kind: directory.KindGroup, Target: "support", Outcome: routing.Deliver}
)

func TestPlanOutOfOfficeTexts(t *testing.T) {
	ctx := context.Background()
	settings := fakeSettings{KindOutOfOffice + "/ana@example.com": OutOfOffice{
		Enabled: true, End: "2026-11-30T09:00",
		Internal: []Template{{Language: "en", Subject: "Away", Body: "Inside text, back {{date .Until}}"}},
		External: []Template{
			{Language: "en", Subject: "Away", Body: "Outside text"},
			{Language: "zh-Hans", Subject: "不在", Body: "外部"},
		},
	}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}}
	for _, c := range []struct {
		name     string
		internal bool
		extra    []string
		want     string
	}{
		{"internal sender gets the internal text", true, nil, "Inside text, back Monday, 30 November 2026"},
		{"external sender gets the external text", false, nil, "Outside text"},
		{"the message's language chooses among the setting's texts", false, []string{"Content-Language: zh-CN"}, "外部"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, m := planMessage(t, c.internal, c.extra...)
			rs, err := p.Plan(ctx, msg, m, decision(toAna))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || !rs[0].Verdict.Reply {
				t.Fatalf("replies %+v", rs)
			}
			if !strings.Contains(rs[0].Body, c.want) {
				t.Errorf("body %q, want %q in it", rs[0].Body, c.want)
			}
			if rs[0].To != "bo@client.test" || rs[0].From.Address != "ana@example.com" || rs[0].InReplyTo != "q1@client.test" {
				t.Errorf("reply %s from %s in reply to %s", rs[0].To, rs[0].From.Address, rs[0].InReplyTo)
			}
		})
	}
}

func TestPlanOutOfOfficeAudienceAndPeriod(t *testing.T) {
	ctx := context.Background()
	settings := fakeSettings{KindOutOfOffice + "/ana@example.com": OutOfOffice{Enabled: true, Audience: AudienceInternal}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}}
	msg, m := planMessage(t, false)
	rs, err := p.Plan(ctx, msg, m, decision(toAna))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Verdict.Reply || rs[0].Verdict.Rule != "internal-only" {
		t.Fatalf("an internal-only reply to an outsider: %+v", rs)
	}
	// Outside its period, the reply is not planned at all.
	settings[KindOutOfOffice+"/ana@example.com"] = OutOfOffice{Enabled: true, Start: "2026-12-01"}
	if rs, _ := p.Plan(ctx, msg, m, decision(toAna)); len(rs) != 0 {
		t.Fatalf("a reply before its period: %+v", rs)
	}
}

func TestPlanAcknowledgementPromise(t *testing.T) {
	ctx := context.Background()
	settings := fakeSettings{KindAcknowledgement + "/support": Acknowledgement{Enabled: true, PromiseHours: 8}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}}
	msg, m := planMessage(t, false)
	rs, err := p.Plan(ctx, msg, m, decision(toSupport))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || !rs[0].Verdict.Reply {
		t.Fatalf("replies %+v", rs)
	}
	// Monday 03:00 UTC is before the default calendar's 09:00: eight hours end at 17:00.
	if !strings.Contains(rs[0].Body, "23 November 2026, 17:00 (UTC)") {
		t.Errorf("the promise is not Monday 17:00 UTC:\n%s", rs[0].Body)
	}
	if !strings.Contains(rs[0].Body, "Mon–Fri 09:00–17:00") {
		t.Errorf("the business hours are not given:\n%s", rs[0].Body)
	}
	// A colleague sees the promise in their own mailbox's time zone.
	msg, m = planMessage(t, true)
	msg.Sender = "ana@example.com"
	rs, err = p.Plan(ctx, msg, m, decision(toSupport))
	if err != nil || len(rs) != 1 {
		t.Fatalf("plan: %v %+v", err, rs)
	}
	if !strings.Contains(rs[0].Body, "24 November 2026, 01:00") {
		t.Errorf("the promise is not in the colleague's zone (Kuala Lumpur):\n%s", rs[0].Body)
	}
	msg, m = planMessage(t, false, "In-Reply-To: <earlier@example.com>")
	rs, _ = p.Plan(ctx, msg, m, decision(toSupport))
	if len(rs) != 1 || rs[0].Verdict.Rule != "not-new" {
		t.Errorf("a reply in a conversation was acknowledged: %+v", rs)
	}
}

func TestPlanOneReplyPerResponderAndNoneFromACatchAll(t *testing.T) {
	ctx := context.Background()
	settings := fakeSettings{KindOutOfOffice + "/ana@example.com": OutOfOffice{Enabled: true}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}}
	msg, m := planMessage(t, false)
	alias := toAna
	alias.Address = "a.lee@example.com"
	catchAll := toAna
	catchAll.Kind, catchAll.Address = "catch-all", "nobody@example.com"
	rs, err := p.Plan(ctx, msg, m, decision(toAna, alias, catchAll))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d replies, want one for ana however she was reached: %+v", len(rs), rs)
	}
	rs, _ = p.Plan(ctx, msg, m, decision(catchAll))
	if len(rs) != 0 {
		t.Errorf("a catch-all answered: %+v", rs)
	}
}

func TestPlanResponseChangesWithTextAndPeriod(t *testing.T) {
	ctx := context.Background()
	led := memLedger{}
	settings := fakeSettings{KindOutOfOffice + "/ana@example.com": OutOfOffice{Enabled: true, End: "2026-11-30"}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}, Ledger: led}
	msg, m := planMessage(t, false)
	plan := func() Reply {
		t.Helper()
		rs, err := p.Plan(ctx, msg, m, decision(toAna))
		if err != nil || len(rs) != 1 {
			t.Fatalf("plan: %v %+v", err, rs)
		}
		return rs[0]
	}
	first := plan()
	if !first.Verdict.Reply {
		t.Fatalf("first %+v", first.Verdict)
	}
	if err := p.Record(ctx, first, planAt); err != nil {
		t.Fatal(err)
	}
	if again := plan(); again.Verdict.Rule != "already-answered" {
		t.Fatalf("the same reply again: %+v", again.Verdict)
	}
	settings[KindOutOfOffice+"/ana@example.com"] = OutOfOffice{Enabled: true, End: "2026-12-02"}
	newPeriod := plan()
	if !newPeriod.Verdict.Reply || newPeriod.Response == first.Response {
		t.Fatalf("a new period is not a new response: %+v", newPeriod)
	}
	settings[KindOutOfOffice+"/ana@example.com"] = OutOfOffice{Enabled: true, End: "2026-11-30",
		External: []Template{{Language: "en", Subject: "Away", Body: "New text"}}}
	if newText := plan(); !newText.Verdict.Reply || newText.Response == first.Response {
		t.Fatalf("a new text is not a new response: %+v", newText)
	}
	// The repeat period comes from the setting.
	settings[KindOutOfOffice+"/ana@example.com"] = OutOfOffice{Enabled: true, End: "2026-11-30", RepeatDays: 1}
	msg.ReceivedAt = planAt.Add(25 * time.Hour)
	if later := plan(); !later.Verdict.Reply {
		t.Fatalf("a reply after its one-day repeat period: %+v", later.Verdict)
	}
}

func TestClosedNoticesTellRouting(t *testing.T) {
	ctx := context.Background()
	c := ClosedNotices{Settings: fakeSettings{
		KindClosed + "/ana@example.com": ClosedNotice{Enabled: true, Successor: "bo@example.com", Forward: true},
		KindClosed + "/cy@example.com":  ClosedNotice{Enabled: false, Successor: "bo@example.com", Forward: true},
	}}
	if s, fwd, ok, err := c.ClosedNotice(ctx, "ana@example.com"); err != nil || !ok || !fwd || s != "bo@example.com" {
		t.Errorf("ana: %q %v %v %v", s, fwd, ok, err)
	}
	if _, _, ok, err := c.ClosedNotice(ctx, "cy@example.com"); ok || err != nil {
		t.Errorf("a disabled notice answers: %v %v", ok, err)
	}
	if _, _, ok, err := c.ClosedNotice(ctx, "dee@example.com"); ok || err != nil {
		t.Errorf("no notice answers: %v %v", ok, err)
	}
}

// BenchmarkPlanAcknowledgement is the work of one acknowledgement besides its DynamoDB reads and
// its send: the rules of when not to reply, the business-hours promise, the template.
func BenchmarkPlanAcknowledgement(b *testing.B) {
	ctx := context.Background()
	settings := fakeSettings{KindAcknowledgement + "/support": Acknowledgement{Enabled: true, PromiseHours: 16}}
	p := &Planner{Settings: settings, Directory: fakeDirectory{}}
	msg, m := planMessage(b, false)
	b.ReportAllocs()
	for b.Loop() {
		if rs, err := p.Plan(ctx, msg, m, decision(toSupport)); err != nil || len(rs) != 1 || !rs[0].Verdict.Reply {
			b.Fatalf("plan: %v %+v", err, rs)
		}
	}
}

func TestPlanLanguageOrder(t *testing.T) {
	ctx := context.Background()
	p := &Planner{Directory: fakeDirectory{}} // Ana's mailbox locale is ms
	cases := []struct {
		name, setting string
		extra         []string
		want          string
	}{
		{"the message's Content-Language", "", []string{"Content-Language: zh-TW"}, "zh-Hant"},
		{"the message's charset", "", []string{"Content-Type: text/plain; charset=gb2312"}, "zh-Hans"},
		{"the mailbox's locale when the message does not say", "", nil, "ms"},
		{"the setting whatever the message says", "vi", []string{"Content-Language: zh-TW"}, "vi"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.Settings = fakeSettings{KindOutOfOffice + "/ana@example.com": OutOfOffice{Enabled: true, Language: c.setting}}
			msg, m := planMessage(t, false, c.extra...)
			rs, err := p.Plan(ctx, msg, m, decision(toAna))
			if err != nil || len(rs) != 1 {
				t.Fatalf("plan: %v %+v", err, rs)
			}
			if rs[0].Language != c.want {
				t.Errorf("language %s, want %s", rs[0].Language, c.want)
			}
		})
	}
}
