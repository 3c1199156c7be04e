package inbound_test

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
)

// setting stores an automatic reply setting as an administrator would.
func (w *world) setting(t *testing.T, kind directory.SettingKind, id string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dir.PutSetting(context.Background(), w.admin, kind, id, body); err != nil {
		t.Fatal(err)
	}
}

// replies are the automatic replies the local SES endpoint sent to addr.
func replies(t *testing.T, addr string) []sesMessage {
	t.Helper()
	var out []sesMessage
	for _, m := range sent(t, addr) {
		if header(t, m.Raw).Get("Auto-Submitted") == "auto-replied" {
			out = append(out, m)
		}
	}
	return out
}

// bodyOf decodes a reply's quoted-printable text.
func bodyOf(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "\r\n\r\n")
	if i < 0 {
		t.Fatalf("no body in %q", raw)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(raw[i+4:])))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodedSubject(t *testing.T, raw string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(header(t, raw).Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOutOfOfficeAnswersTheFirstMessageOnceAndStaysSilentForTheSecond(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	back := time.Now().Add(72 * time.Hour).UTC()
	w.setting(t, autoreply.OutOfOfficeSetting(w.store), w.addr("ana"), autoreply.OutOfOffice{
		Enabled: true,
		Start:   time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		End:     back.Format(time.RFC3339),
	})
	customer := w.extAddr("customer")

	first := simple(customer, w.addr("ana"), "Quote please")
	d := w.deliver(t, first, customer, nil, w.addr("ana"))
	got := replies(t, customer)
	if len(got) != 1 {
		t.Fatalf("customer got %d automatic replies, want 1\nlogs: %s", len(got), w.logs)
	}
	r := got[0]
	h := header(t, r.Raw)
	if from := h.Get("From"); !strings.Contains(from, w.addr("ana")) {
		t.Errorf("From = %q, want ana", from)
	}
	if to := h.Get("To"); !strings.Contains(to, customer) {
		t.Errorf("To = %q, want the envelope sender", to)
	}
	orig := header(t, first).Get("Message-Id")
	if h.Get("In-Reply-To") != orig || !strings.Contains(h.Get("References"), orig) {
		t.Errorf("In-Reply-To %q, References %q; want both to name %s", h.Get("In-Reply-To"), h.Get("References"), orig)
	}
	if s := decodedSubject(t, r.Raw); s != "Automatic reply: Quote please" {
		t.Errorf("Subject = %q", s)
	}
	if body := bodyOf(t, r.Raw); !strings.Contains(body, "Hello Ana Sender") || !strings.Contains(body, "back on") {
		t.Errorf("body does not greet the sender or say when ana is back:\n%s", body)
	}
	for i := 0; i < len(r.Raw); i++ {
		if r.Raw[i] >= 0x80 {
			t.Fatalf("the reply is not 7-bit at byte %d", i)
		}
	}
	if n := count(t, w.extAddr("ana-home")); n != 1 {
		t.Errorf("ana's forwarding destination got %d messages, want the original once", n)
	}

	// A retried invocation of the same message replies no more.
	ev := sesEvent(d.id, time.Now(), w.addr("ana"))
	ev.Records[0].SES.Mail.Source = customer
	if _, err := w.handler.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	// A second message from the same sender in the same period gets nothing.
	w.deliver(t, simple(customer, w.addr("ana"), "Another question"), customer, nil, w.addr("ana"))
	if n := len(replies(t, customer)); n != 1 {
		t.Fatalf("after a retry and a second message the customer has %d automatic replies, want 1", n)
	}
	if !strings.Contains(w.logs.String(), `"rule":"already-answered"`) {
		t.Errorf("the second message's silence is not logged with its rule\nlogs: %s", w.logs)
	}

	// A new period is a new response: the sender hears of it once.
	w.setting(t, autoreply.OutOfOfficeSetting(w.store), w.addr("ana"), autoreply.OutOfOffice{
		Enabled: true, End: back.Add(48 * time.Hour).Format(time.RFC3339),
	})
	w.deliver(t, simple(customer, w.addr("ana"), "Third"), customer, nil, w.addr("ana"))
	if n := len(replies(t, customer)); n != 2 {
		t.Fatalf("after a new out-of-office period the customer has %d replies, want 2", n)
	}
}

func TestOutOfOfficeStaysSilentWhereTheStandardsSaySo(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.setting(t, autoreply.OutOfOfficeSetting(w.store), w.addr("ana"), autoreply.OutOfOffice{Enabled: true})
	cases := []struct {
		name, sender, envelope, to string
		extra                      []string
		verdicts                   map[string]string
	}{
		{name: "list post (RFC 5230 §4.6)", sender: w.extAddr("list"), envelope: w.extAddr("list-bounces"), to: w.addr("ana"),
			extra: []string{"List-Id: <talk.lists.test>"}},
		{name: "auto-submitted (RFC 3834 §2)", sender: w.extAddr("bot"), envelope: w.extAddr("bot"), to: w.addr("ana"),
			extra: []string{"Auto-Submitted: auto-generated"}},
		{name: "null envelope sender (RFC 3834 §2)", sender: w.extAddr("daemon"), envelope: "", to: w.addr("ana")},
		{name: "Bcc: not addressed to ana (RFC 5230 §4.5)", sender: w.extAddr("bcc"), envelope: w.extAddr("bcc"), to: w.extAddr("someone")},
		{name: "SES spam verdict", sender: w.extAddr("spam"), envelope: w.extAddr("spam"), to: w.addr("ana"),
			verdicts: map[string]string{"spam": "FAIL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.deliver(t, simple(c.sender, c.to, "Hello", c.extra...), c.envelope, c.verdicts, w.addr("ana"))
			for _, a := range []string{c.sender, c.envelope} {
				if a == "" {
					continue
				}
				if n := len(replies(t, a)); n != 0 {
					t.Errorf("%s got %d automatic replies, want none", a, n)
				}
			}
		})
	}
}

func TestOutOfOfficeInChineseIsSevenBit(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "li", w.extAddr("li-home"))
	w.setting(t, autoreply.OutOfOfficeSetting(w.store), w.addr("li"), autoreply.OutOfOffice{
		Enabled: true, Language: "zh-Hans", TimeZone: "Asia/Shanghai",
		End: time.Now().Add(240 * time.Hour).In(time.UTC).Format(time.RFC3339),
	})
	customer := w.extAddr("kehu")
	w.deliver(t, simple(customer, w.addr("li"), "=?UTF-8?B?5oql5Lu3?="), customer, nil, w.addr("li"))
	got := replies(t, customer)
	if len(got) != 1 {
		t.Fatalf("got %d replies, want 1\nlogs: %s", len(got), w.logs)
	}
	raw := got[0].Raw
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			t.Fatalf("not 7-bit at byte %d", i)
		}
	}
	if s := decodedSubject(t, raw); !strings.Contains(s, "报价") {
		t.Errorf("subject %q does not carry the decoded original subject", s)
	}
	if cl := header(t, raw).Get("Content-Language"); cl != "zh-Hans" {
		t.Errorf("Content-Language = %q", cl)
	}
}

func TestGroupAcknowledgesNewConversationsWithABusinessHoursPromise(t *testing.T) {
	w := newWorld(t, nil)
	w.group(t, "support", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("agent")))
	cal := calendar.Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: map[string][]string{
		"mon": {"09:00-12:00", "13:00-18:00"}, "tue": {"09:00-18:00"}, "wed": {"09:00-18:00"},
		"thu": {"09:00-18:00"}, "fri": {"09:00-17:00"},
	}}
	w.setting(t, autoreply.AcknowledgementSetting(w.store), "support", autoreply.Acknowledgement{
		Enabled: true, PromiseHours: 8, Calendar: &cal,
	})
	customer := w.extAddr("customer")
	start := time.Now()
	first := simple(customer, w.addr("support"), "Broken invoice")
	w.deliver(t, first, customer, nil, w.addr("support"))
	got := replies(t, customer)
	if len(got) != 1 {
		t.Fatalf("got %d acknowledgements, want 1\nlogs: %s", len(got), w.logs)
	}
	compiled, err := cal.Compile()
	if err != nil {
		t.Fatal(err)
	}
	body := bodyOf(t, got[0].Raw)
	// The promise is 8 business hours after receipt; the test ran within a minute of start.
	found := false
	for _, at := range []time.Time{start, start.Add(time.Minute), start.Add(-time.Minute)} {
		by := compiled.Add(at, 8*time.Hour).In(compiled.Location())
		if strings.Contains(body, by.Format("15:04")) && strings.Contains(body, by.Format("2006")) {
			found = true
		}
	}
	if !found {
		t.Errorf("the acknowledgement does not promise 8 business hours from receipt (%s):\n%s", compiled.Add(start, 8*time.Hour), body)
	}
	if !strings.Contains(body, compiled.String()) {
		t.Errorf("the acknowledgement does not give the business hours %q:\n%s", compiled.String(), body)
	}

	// A reply in the same conversation is not a new conversation.
	id := header(t, first).Get("Message-Id")
	w.deliver(t, simple(w.extAddr("other"), w.addr("support"), "Re: Broken invoice", "In-Reply-To: "+id, "References: "+id),
		w.extAddr("other"), nil, w.addr("support"))
	if n := len(replies(t, w.extAddr("other"))); n != 0 {
		t.Errorf("a reply in a conversation got %d acknowledgements, want none", n)
	}
}

func TestClosedMailboxAnswersAndForwardsToItsSuccessor(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "old", w.extAddr("old-home"))
	w.mailbox(t, "gone", w.extAddr("gone-home"))
	ctx := context.Background()
	for _, a := range []string{"old", "gone"} {
		if _, err := w.dir.UpdateMailbox(ctx, w.admin, w.addr(a), []byte(`{"status":"closed"}`)); err != nil {
			t.Fatal(err)
		}
	}
	successor := w.extAddr("new")
	w.setting(t, autoreply.ClosedNoticeSetting(w.store), w.addr("old"), autoreply.ClosedNotice{
		Enabled: true, Successor: successor, Forward: true,
	})
	customer := w.extAddr("customer")
	d := w.deliver(t, simple(customer, w.addr("old"), "Order 7"), customer, nil, w.addr("old"))
	if r := d.decision.Recipients[0]; r.Outcome != "closed" {
		t.Fatalf("outcome %s, want closed", r.Outcome)
	}
	got := replies(t, customer)
	if len(got) != 1 {
		t.Fatalf("customer got %d notices, want 1\nlogs: %s", len(got), w.logs)
	}
	if body := bodyOf(t, got[0].Raw); !strings.Contains(body, successor) {
		t.Errorf("the notice does not name the successor:\n%s", body)
	}
	if n := count(t, successor); n != 1 {
		t.Errorf("the successor got %d messages, want the forwarded original", n)
	}
	if n := count(t, w.extAddr("old-home")); n != 0 {
		t.Errorf("the closed mailbox's own destination got %d messages", n)
	}
	for _, m := range sent(t, customer) {
		if strings.Contains(header(t, m.Raw).Get("Content-Type"), "report") {
			t.Errorf("the customer got a bounce as well as the notice")
		}
	}

	// A closed mailbox without a notice still bounces.
	d = w.deliver(t, simple(customer, w.addr("gone"), "Order 8"), customer, nil, w.addr("gone"))
	if r := d.decision.Recipients[0]; r.Outcome != "bounce" {
		t.Errorf("outcome %s, want bounce", r.Outcome)
	}
}
