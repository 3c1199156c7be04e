package inbound_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/functions/inbound"
	"github.com/mailroom/mailroom/functions/sesevents"
	"github.com/mailroom/mailroom/functions/slasweep"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/delivery"
	dests "github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/sesmail"
	"github.com/mailroom/mailroom/shared/sla"
)

// TestSLAEndToEnd is the life of one conversation on the local stack, with business time
// passing on an injected clock: the customer's message opens it and is acknowledged with the
// policy's deadline; the sweep warns, then reports the breach and sends the customer one holding
// reply, each once however often it runs; a colleague's reply through the journal address
// closes the clock; the report shows it.
func TestSLAEndToEnd(t *testing.T) {
	w := newWorld(t, nil)
	journal := w.addr("journal")
	w.cfg.JournalAddresses = []string{journal}
	w.handler = inbound.New(w.cfg, w.clients, slog.New(slog.NewJSONHandler(w.logs, nil)))
	ctx := context.Background()
	w.mailbox(t, "journal") // the archive is its mailbox
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.group(t, "support", directory.Posting{Policy: directory.PostAnyone}, mbx(w.addr("ana")))
	lead := w.extAddr("lead")
	kl := sla.CalendarSetting{Calendar: calendar.Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: map[string][]string{
		"mon": {"09:00-12:00", "13:00-18:00"}, "tue": {"09:00-12:00", "13:00-18:00"}, "wed": {"09:00-12:00", "13:00-18:00"},
		"thu": {"09:00-12:00", "13:00-18:00"}, "fri": {"09:00-12:00", "13:00-18:00"},
	}}}
	w.setting(t, sla.CalendarSettingKind(), "kl", kl)
	w.setting(t, sla.PolicySetting(w.store), "standard", sla.Policy{
		Name: "Standard", Calendar: "kl", FirstResponseHours: 4, WarnPercent: 75,
		Escalation: []string{lead}, Groups: []string{"support"}, HoldingReply: true,
	})
	w.setting(t, autoreply.AcknowledgementSetting(w.store), "support", autoreply.Acknowledgement{Enabled: true})

	loc, _ := time.LoadLocation("Asia/Kuala_Lumpur")
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	customer := w.extAddr("customer")

	// Monday 10:00: the customer writes. 4 business hours: 10–12, 13–15.
	w.at = at("2026-11-30 10:00")
	first := simple(customer, w.addr("support"), "Invoice 2026-118 is wrong")
	w.deliver(t, first, customer, nil, w.addr("support"))
	store := dynamo.NewConversations(w.clients.DynamoDB, w.cfg.StateTable)
	svc := &sla.Service{Store: store, Policies: sla.Policies{Settings: w.store}}
	opened, err := store.Opened(ctx, sla.QueueOfGroup("support"), at("2026-11-30 00:00"), at("2026-12-01 00:00"))
	if err != nil || len(opened) != 1 {
		t.Fatalf("conversations opened: %v %+v\nlogs: %s", err, opened, w.logs)
	}
	c := opened[0]
	if !c.Due.Equal(at("2026-11-30 15:00")) || !c.WarnAt.Equal(at("2026-11-30 14:00")) {
		t.Fatalf("due %s, warning %s; want 15:00 and 14:00 in Kuala Lumpur", c.Due.In(loc), c.WarnAt.In(loc))
	}
	acks := replies(t, customer)
	if len(acks) != 1 || !strings.Contains(bodyOf(t, acks[0].Raw), "30 November 2026, 15:00") {
		t.Fatalf("the acknowledgement does not promise the policy's deadline (Monday 15:00):\n%v", acks)
	}

	var now time.Time
	clock := func() time.Time { return now }
	svc.Now = clock
	sweep := slasweep.NewHandler(svc, &slasweep.Notifier{
		Directory: w.store, Policies: svc.Policies,
		Delivery: &delivery.Service{
			Sender: sesmail.New(w.clients.SES, ""), Ledger: dynamo.NewLedger(w.clients.DynamoDB, w.cfg.StateTable), Now: clock,
		},
	}, 500, slog.New(slog.NewTextHandler(io.Discard, nil)))
	run := func(when string) {
		t.Helper()
		now = at(when)
		for range 2 { // every notice goes once, however often the sweep runs
			if err := sweep.Handle(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("2026-11-30 13:59")
	if n := count(t, lead); n != 0 {
		t.Fatalf("the lead was told %d times before the warning", n)
	}
	run("2026-11-30 14:00")
	if n := count(t, lead); n != 1 {
		t.Fatalf("after the warning time the lead has %d notices, want 1", n)
	}
	run("2026-11-30 15:30")
	notices := sent(t, lead)
	if len(notices) != 2 {
		t.Fatalf("after the deadline the lead has %d notices, want the warning and the breach", len(notices))
	}
	subjects := decodedSubject(t, notices[0].Raw) + " | " + decodedSubject(t, notices[1].Raw)
	if !strings.Contains(subjects, "Due soon "+c.Token()) || !strings.Contains(subjects, "Overdue "+c.Token()) {
		t.Errorf("notice subjects %q", subjects)
	}
	got := replies(t, customer)
	if len(got) != 2 {
		t.Fatalf("the customer has %d automatic replies, want the acknowledgement and one holding reply", len(got))
	}
	var holding string
	for _, r := range got {
		if strings.HasPrefix(decodedSubject(t, r.Raw), "Still working on it") {
			holding = r.Raw
		}
	}
	if holding == "" {
		t.Fatal("no holding reply")
	}
	// The target again from 15:30, four business hours: 15:30–18:00, Tuesday 09:00–10:30.
	if body := bodyOf(t, holding); !strings.Contains(body, "1 December 2026, 10:30") {
		t.Errorf("the holding reply does not promise Tuesday 10:30:\n%s", body)
	}
	if h := header(t, holding); !strings.Contains(h.Get("In-Reply-To"), strings.Trim(header(t, first).Get("Message-Id"), "<>")) {
		t.Errorf("the holding reply is not threaded to the customer's message: %q", h.Get("In-Reply-To"))
	}

	// Monday 16:00: Ana answers; her mail system sends the journal a copy.
	w.at = at("2026-11-30 16:00")
	id := header(t, first).Get("Message-Id")
	w.deliver(t, simple(w.addr("ana"), customer, "Re: Invoice 2026-118 is wrong", "In-Reply-To: "+id, "References: "+id),
		w.addr("ana"), map[string]string{"spf": "PASS"}, journal)
	answered, err := store.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if answered.State != sla.Answered || answered.FirstResponse != 5*time.Hour || answered.WithinTarget {
		t.Fatalf("after Ana's answer: state %s, first response %s, within target %v\nlogs: %s", answered.State, answered.FirstResponse, answered.WithinTarget, w.logs)
	}
	run("2026-12-01 12:00")
	if n := count(t, lead); n != 2 {
		t.Errorf("the lead got %d notices after the answer, want still 2", n)
	}

	// Tuesday 09:30: the customer answers Ana; the next-response clock starts. Ana's reply goes
	// out through SES this time, and SES's send event answers the conversation.
	anaID := "ana-1@" + w.domain
	w.at = at("2026-12-01 09:30")
	again := simple(customer, w.addr("support"), "Re: Invoice 2026-118 is wrong", "In-Reply-To: <"+anaID+">", "References: "+id+" <"+anaID+">")
	w.deliver(t, again, customer, nil, w.addr("support"))
	next, _ := store.Conversation(ctx, c.ID)
	if next.State != sla.Waiting || next.Target != sla.TargetNext {
		t.Fatalf("after the customer's answer: %s, target %s\nlogs: %s", next.State, next.Target, w.logs)
	}
	events := sesevents.NewHandler(&dests.Service{Store: dynamo.NewDestinations(w.clients.DynamoDB, w.cfg.StateTable)},
		slog.New(slog.NewTextHandler(io.Discard, nil))).WithSLA(svc)
	if err := events.Handle(ctx, staffSendEvent(t, w.addr("ana"), customer, "<ana-2@"+w.domain+">", header(t, again).Get("Message-Id"), at("2026-12-01 10:00"))); err != nil {
		t.Fatal(err)
	}
	done, _ := store.Conversation(ctx, c.ID)
	if done.State != sla.Answered || done.Responses != 2 {
		t.Fatalf("after Ana's answer through SES: %s, %d responses", done.State, done.Responses)
	}
	rep, err := svc.Report(ctx, sla.QueueOfGroup("support"), at("2026-11-01 00:00"), at("2026-12-01 00:00"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rep)
	if rep.Conversations != 1 || rep.Answered != 1 || rep.WithinTarget != 0 || rep.MedianHours != 5 || len(rep.Breaches) != 0 {
		t.Errorf("report %s", js)
	}
}

// staffSendEvent is SES's EventBridge "Email Sent" event for a message a colleague sent through
// SES from their own mail client: the original header fields, no Mailroom tag.
func staffSendEvent(t *testing.T, from, to, messageID, inReplyTo string, at time.Time) []byte {
	t.Helper()
	detail := map[string]any{
		"eventType": "Send",
		"mail": map[string]any{
			"timestamp": at.UTC().Format(time.RFC3339Nano), "source": from, "messageId": "0100staff-" + strings.Trim(messageID, "<>"),
			"sourceArn":        "arn:aws:ses:us-east-1:123456789012:identity/" + from[strings.IndexByte(from, '@')+1:],
			"sendingAccountId": "123456789012", "destination": []string{to}, "headersTruncated": false,
			"headers": []map[string]string{
				{"name": "From", "value": from}, {"name": "To", "value": to}, {"name": "Subject", "value": "Re: Invoice 2026-118 is wrong"},
				{"name": "Message-ID", "value": messageID}, {"name": "In-Reply-To", "value": inReplyTo}, {"name": "References", "value": inReplyTo},
			},
			"commonHeaders": map[string]any{"from": []string{from}, "to": []string{to}, "messageId": messageID, "subject": "Re: Invoice 2026-118 is wrong"},
			"tags":          map[string][]string{"ses:configuration-set": {"mailroom-outbound"}},
		},
		"send": map[string]any{},
	}
	ev, err := json.Marshal(map[string]any{
		"version": "0", "id": "00000000-0000-4000-8000-0000000000aa", "detail-type": "Email Sent", "source": "aws.ses",
		"account": "123456789012", "time": at.UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{"arn:aws:ses:us-east-1:123456789012:configuration-set/mailroom-outbound"}, "detail": detail,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
