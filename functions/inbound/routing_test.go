package inbound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/functions/inbound"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	mrmail "github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// world is a directory on the local stack with an inbound handler that routes through it and
// sends through the local SES endpoint.
type world struct {
	env
	dir    *directory.Service
	store  *dynamo.Directory
	domain string // the served domain, unique per test so SES's outbox is not shared
	ext    string // an external domain, unique per test
	admin  directory.Call
	seq    atomic.Int64
	// at, when set, is when the next message arrives; now when zero.
	at time.Time
	// explainDiffers turns off the check that delivery did what explain said, for the one
	// case explain cannot see: a Message-ID that already passed through a group in another
	// inbound message (the state table's loop marks).
	explainDiffers bool
}

var worlds atomic.Int64

func newWorld(t *testing.T, configure func(*inbound.Config)) *world {
	t.Helper()
	n := worlds.Add(1)
	w := &world{domain: fmt.Sprintf("w%d-%d.example", n, time.Now().UnixNano()%1e6)}
	w.ext = "ext-" + w.domain[:strings.IndexByte(w.domain, '.')] + ".test"
	e := newEnv(t)
	e.cfg.DirectoryTable = devstacktest.Table(t, "DirectoryTable")
	e.cfg.StateTable = devstacktest.Table(t, "StateTable")
	audit := devstacktest.Table(t, "AuditTable")
	if configure != nil {
		configure(&e.cfg)
	}
	e.handler = inbound.New(e.cfg, e.clients, slog.New(slog.NewJSONHandler(e.logs, nil)))
	w.env = e
	w.store = dynamo.NewDirectory(e.clients.DynamoDB, e.cfg.DirectoryTable, audit)
	w.dir = &directory.Service{Store: w.store, Audit: w.store, Now: time.Now}
	w.admin = directory.Call{Principal: directory.Principal{Subject: "test", Roles: []string{directory.RoleAdmin}}}
	ctx := context.Background()
	if _, err := w.dir.CreateDomain(ctx, w.admin, directory.Domain{Name: w.domain, UnknownRecipients: directory.UnknownBounce}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) addr(local string) string    { return local + "@" + w.domain }
func (w *world) extAddr(local string) string { return local + "@" + w.ext }

func (w *world) mailbox(t *testing.T, local string, forward ...string) {
	t.Helper()
	if _, err := w.dir.CreateMailbox(context.Background(), w.admin, directory.Mailbox{Address: w.addr(local), DisplayName: local, ForwardTo: forward}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) group(t *testing.T, id string, posting directory.Posting, members ...directory.Member) {
	t.Helper()
	ctx := context.Background()
	g := directory.Group{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Type: "department", Addresses: []string{w.addr(id)}, Posting: posting}
	if posting.Policy == directory.PostModerated {
		g.Owners = []string{w.addr("boss")}
	}
	if _, err := w.dir.CreateGroup(ctx, w.admin, g); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if _, _, err := w.dir.AddMember(ctx, w.admin, id, m); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) rule(t *testing.T, r routing.Rule) {
	t.Helper()
	body, _ := json.Marshal(r)
	if _, err := w.dir.CreateSetting(context.Background(), w.admin, routing.RuleSetting(w.store), r.ID, body); err != nil {
		t.Fatal(err)
	}
}

func ext(addr string) directory.Member {
	return directory.Member{Kind: directory.KindExternal, Address: addr}
}
func mbx(addr string) directory.Member {
	return directory.Member{Kind: directory.KindMailbox, Address: addr}
}
func grp(id string) directory.Member { return directory.Member{Kind: directory.KindGroup, Group: id} }

// delivered is what the run of one message did.
type delivered struct {
	id       string
	decision routing.Decision
}

// deliver stores raw as SES would and invokes the handler for the recipients; it also asks the
// router what it would do (explain), before anything is sent.
func (w *world) deliver(t *testing.T, raw string, envelopeFrom string, verdicts map[string]string, recipients ...string) delivered {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("%s-%d", strings.ReplaceAll(w.domain, ".", "-"), w.seq.Add(1))
	w.receive(t, id, []byte(raw))
	at := time.Now().UTC()
	if !w.at.IsZero() {
		at = w.at.UTC()
	}
	ev := sesEvent(id, at, recipients...)
	rec := &ev.Records[0]
	rec.SES.Mail.Source = envelopeFrom
	for k, v := range verdicts {
		switch k {
		case "spf":
			rec.SES.Receipt.SPFVerdict.Status = v
		case "dkim":
			rec.SES.Receipt.DKIMVerdict.Status = v
		case "dmarc":
			rec.SES.Receipt.DMARCVerdict.Status = v
		case "spam":
			rec.SES.Receipt.SpamVerdict.Status = v
		case "virus":
			rec.SES.Receipt.VirusVerdict.Status = v
		}
	}
	m, err := mrmail.Parse(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	env := routing.Envelope{ID: id, EnvelopeFrom: envelopeFrom, Recipients: recipients, ReceivedAt: at, Verdicts: routing.Verdicts{
		Spam: rec.SES.Receipt.SpamVerdict.Status, Virus: rec.SES.Receipt.VirusVerdict.Status, SPF: rec.SES.Receipt.SPFVerdict.Status,
		DKIM: rec.SES.Receipt.DKIMVerdict.Status, DMARC: rec.SES.Receipt.DMARCVerdict.Status,
	}}
	msg, err := routing.MessageOf(ctx, w.store, env, m)
	if err != nil {
		t.Fatal(err)
	}
	router := &routing.Router{Directory: w.store, Rules: routing.StoredRules{Store: w.store}, Closed: autoreply.ClosedNotices{Settings: w.store}}
	dec, err := router.Decide(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	// Explain and delivery must agree: every destination the decision names gets exactly one
	// message, and the sender one bounce when the decision bounces.
	expect := map[string]int{}
	for _, f := range dec.Forwards {
		for _, d := range f.Destinations {
			expect[d]++
		}
	}
	if len(dec.Bounces) > 0 && envelopeFrom != "" {
		expect[strings.ToLower(envelopeFrom)]++
	}
	before := map[string]int{}
	for d := range expect {
		before[d] = count(t, d)
	}
	if _, err := w.handler.Handle(ctx, ev); err != nil {
		t.Fatalf("handle: %v\nlogs: %s", err, w.logs)
	}
	if !w.explainDiffers {
		for d, n := range expect {
			if got := count(t, d) - before[d]; got != n {
				t.Errorf("explain said %s gets %d message(s); delivery sent %d", d, n, got)
			}
		}
	}
	return delivered{id: id, decision: dec}
}

// count is how many messages the local SES endpoint sent to addr.
func count(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get(devstacktest.Endpoints(t).SES + "/_mailroom/messages?to=" + url.QueryEscape(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return len(list.Messages)
}

// sesMessage is what the local SES endpoint kept of a send.
type sesMessage struct {
	MessageId  string
	From       string
	Recipients []string
	Subject    string
	EmailTags  []struct{ Name, Value string }
	Raw        string
}

// sent lists what the local SES endpoint sent to addr, newest first, with the raw bytes.
func sent(t *testing.T, addr string) []sesMessage {
	t.Helper()
	base := devstacktest.Endpoints(t).SES
	resp, err := http.Get(base + "/_mailroom/messages?to=" + url.QueryEscape(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []sesMessage }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for i, m := range list.Messages {
		r, err := http.Get(base + "/_mailroom/messages/" + url.PathEscape(m.MessageId))
		if err != nil {
			t.Fatal(err)
		}
		var full struct{ Raw []byte }
		err = json.NewDecoder(r.Body).Decode(&full)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		list.Messages[i].Raw = string(full.Raw)
	}
	return list.Messages
}

func header(t *testing.T, raw string) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("sent message does not parse: %v", err)
	}
	return m.Header
}

func simple(from, to, subject string, extra ...string) string {
	var b strings.Builder
	b.WriteString("Return-Path: <" + from + ">\r\n")
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; d=origin.test; s=s1; b=abc\r\n")
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; d=relay.test; s=s2; b=def\r\n")
	b.WriteString("From: Ana Sender <" + from + ">\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Subject: " + subject + "\r\n")
	b.WriteString(fmt.Sprintf("Message-ID: <%d.%s>\r\n", time.Now().UnixNano(), strings.ReplaceAll(from, "@", "-at-")+"@origin.test"))
	b.WriteString("Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello team.\r\n")
	return b.String()
}

// destinations are the addresses a decision sends to, sorted.
func destinations(d routing.Decision) []string {
	var out []string
	for _, f := range d.Forwards {
		out = append(out, f.Destinations...)
	}
	slices.Sort(out)
	return out
}

func TestGroupFanOutIsDMARCSafeAndMatchesExplain(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.mailbox(t, "raj") // no forwarding: the archive is the mailbox
	w.group(t, "apac", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("bo")))
	w.group(t, "sales", directory.Posting{Policy: directory.PostAnyone},
		mbx(w.addr("ana")), mbx(w.addr("raj")), ext(w.extAddr("carol")), grp("apac"))
	sender := "customer@client.test"

	d := w.deliver(t, simple(sender, w.addr("sales"), "Quote please"), sender, nil, w.addr("sales"))

	want := []string{w.extAddr("ana-home"), w.extAddr("bo"), w.extAddr("carol")}
	if got := destinations(d.decision); !slices.Equal(got, want) {
		t.Fatalf("explain destinations = %v, want %v", got, want)
	}
	if !slices.Contains(d.decision.Local, w.addr("raj")) {
		t.Errorf("raj has no forwarding; want him in Local, got %v", d.decision.Local)
	}
	for _, to := range want {
		msgs := sent(t, to)
		if len(msgs) != 1 {
			t.Fatalf("%s got %d messages, want 1 (explain said it would get one)", to, len(msgs))
		}
		h := header(t, msgs[0].Raw)
		from, _ := mail.ParseAddress(h.Get("From"))
		if from == nil || from.Address != w.addr("sales") || from.Name != "Ana Sender via Sales" {
			t.Errorf("From = %q, want \"Ana Sender via Sales\" <%s>", h.Get("From"), w.addr("sales"))
		}
		if rt := h.Get("Reply-To"); !strings.Contains(rt, sender) {
			t.Errorf("Reply-To = %q, want the original sender", rt)
		}
		for _, gone := range []string{"Dkim-Signature", "Return-Path", "Sender"} {
			if v := h[gone]; len(v) > 0 {
				t.Errorf("%s still present: %q", gone, v)
			}
		}
		if got := h.Get(routing.LoopField); got != w.addr("sales") {
			t.Errorf("%s = %q, want %s", routing.LoopField, got, w.addr("sales"))
		}
	}

	// A retried invocation sends nothing again.
	ev := sesEvent(d.id, time.Now(), w.addr("sales"))
	ev.Records[0].SES.Mail.Source = sender
	if _, err := w.handler.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	for _, to := range want {
		if n := len(sent(t, to)); n != 1 {
			t.Errorf("after a retry %s has %d messages, want 1", to, n)
		}
	}
}

func TestSenderIsLeftOutOfTheirOwnPost(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.group(t, "team", directory.Posting{Policy: directory.PostMembers}, mbx(w.addr("ana")), ext(w.extAddr("dan")))
	d := w.deliver(t, simple(w.addr("ana"), w.addr("team"), "Lunch"), w.addr("ana"), map[string]string{"dkim": "PASS"}, w.addr("team"))
	if got, want := destinations(d.decision), []string{w.extAddr("dan")}; !slices.Equal(got, want) {
		t.Fatalf("destinations = %v, want %v", got, want)
	}
	if n := len(sent(t, w.extAddr("ana-home"))); n != 0 {
		t.Errorf("the sender's own forwarding destination got %d copies", n)
	}
	msgs := sent(t, w.extAddr("dan"))
	if len(msgs) != 1 {
		t.Fatalf("dan got %d", len(msgs))
	}
	// An authenticated sender of the organisation keeps their From.
	if h := header(t, msgs[0].Raw); !strings.Contains(h.Get("From"), w.addr("ana")) || strings.Contains(h.Get("From"), " via ") {
		t.Errorf("From = %q, want the internal sender unchanged", h.Get("From"))
	}
}

func TestPostingPolicies(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "boss", w.extAddr("boss-home"))
	member := w.extAddr("member")
	w.group(t, "open", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("open-dest")))
	w.group(t, "internal", directory.Posting{Policy: directory.PostOrganisation}, ext(w.extAddr("internal-dest")))
	w.group(t, "members", directory.Posting{Policy: directory.PostMembers}, ext(member), ext(w.extAddr("members-dest")))
	w.group(t, "listed", directory.Posting{Policy: directory.PostAllowList, Allow: []string{"@partner.test"}}, ext(w.extAddr("listed-dest")))
	w.group(t, "moderated", directory.Posting{Policy: directory.PostModerated}, ext(w.extAddr("moderated-dest")))

	cases := []struct {
		group, sender string
		verdicts      map[string]string
		outcome       string
	}{
		{"open", "anyone@else.test", nil, routing.Deliver},
		{"internal", "anyone@else.test", nil, routing.Bounce},
		{"internal", w.addr("boss"), map[string]string{"dkim": "PASS"}, routing.Deliver},
		{"internal", w.addr("boss"), map[string]string{"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"}, routing.Drop}, // forged: no backscatter
		{"members", "stranger@else.test", nil, routing.Bounce},
		{"members", member, nil, routing.Deliver},
		{"members", member, map[string]string{"dmarc": "FAIL"}, routing.Drop},
		{"listed", "someone@partner.test", nil, routing.Deliver},
		{"listed", "someone@other.test", nil, routing.Bounce},
		{"moderated", "someone@other.test", nil, routing.Hold},
		{"moderated", w.addr("boss"), map[string]string{"dkim": "PASS"}, routing.Deliver},
	}
	for _, c := range cases {
		t.Run(c.group+"/"+c.sender+"/"+c.outcome, func(t *testing.T) {
			before := len(sent(t, w.extAddr(c.group+"-dest")))
			bouncesBefore := len(sent(t, c.sender))
			d := w.deliver(t, simple(c.sender, w.addr(c.group), "Hello "+c.group), c.sender, c.verdicts, w.addr(c.group))
			if got := d.decision.Recipients[0].Outcome; got != c.outcome {
				t.Fatalf("outcome = %s (%s), want %s", got, d.decision.Recipients[0].Reason, c.outcome)
			}
			after := len(sent(t, w.extAddr(c.group+"-dest")))
			if delivered := after > before; delivered != (c.outcome == routing.Deliver) {
				t.Errorf("the group's member got %d new message(s); outcome %s", after-before, c.outcome)
			}
			bounces := sent(t, c.sender)
			if got := len(bounces) - bouncesBefore; (got == 1) != (c.outcome == routing.Bounce) {
				t.Fatalf("the sender got %d new message(s); outcome %s", got, c.outcome)
			}
			if c.outcome == routing.Bounce {
				raw := bounces[0].Raw
				if !strings.Contains(raw, "multipart/report") || !strings.Contains(raw, "5.7.1") || !strings.Contains(raw, w.addr(c.group)) {
					t.Errorf("bounce is not a DSN naming the group and 5.7.1:\n%s", raw)
				}
			}
		})
	}
}

func TestRecipientResolution(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.mailbox(t, "gone", w.extAddr("gone-home"))
	w.group(t, "help", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("help-dest")))
	if _, err := w.dir.CreateAlias(ctx, w.admin, directory.Alias{Address: w.addr("support"), Target: w.addr("help")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.dir.UpdateMailbox(ctx, w.admin, w.addr("gone"), []byte(`{"status":"closed"}`)); err != nil {
		t.Fatal(err)
	}
	sender := "someone@client.test"

	d := w.deliver(t, simple(sender, w.addr("ana+invoices"), "Invoice"), sender, nil, w.addr("ana+invoices"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Deliver || r.Tag != "invoices" || !slices.Contains(d.decision.Labels, "invoices") {
		t.Errorf("plus-address: %+v labels %v", r, d.decision.Labels)
	}
	rec, err := w.index.Get(ctx, d.id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rec.Labels, "invoices") {
		t.Errorf("archive labels = %v, want the plus tag", rec.Labels)
	}

	d = w.deliver(t, simple(sender, w.addr("support"), "Help"), sender, nil, w.addr("support"))
	if got := destinations(d.decision); !slices.Equal(got, []string{w.extAddr("help-dest")}) {
		t.Errorf("alias to group reached %v", got)
	}
	d = w.deliver(t, simple(sender, w.addr("gone"), "Hi"), sender, nil, w.addr("gone"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Bounce {
		t.Errorf("closed mailbox: %+v", r)
	}
	if n := len(sent(t, w.extAddr("gone-home"))); n != 0 {
		t.Errorf("a closed mailbox's forwarding destination got %d", n)
	}

	// Unknown recipients follow the domain's policy.
	d = w.deliver(t, simple(sender, w.addr("nobody"), "Hi"), sender, nil, w.addr("nobody"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Bounce || !strings.Contains(r.Reason, "does not exist") {
		t.Errorf("unknown with bounce policy: %+v", r)
	}
	if _, err := w.dir.UpdateDomain(ctx, w.admin, w.domain, []byte(`{"unknownRecipients":"drop"}`)); err != nil {
		t.Fatal(err)
	}
	d = w.deliver(t, simple(sender, w.addr("nobody"), "Hi"), sender, nil, w.addr("nobody"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Drop {
		t.Errorf("unknown with drop policy: %+v", r)
	}
	patch := fmt.Sprintf(`{"unknownRecipients":"catch-all","catchAll":%q}`, w.addr("ana"))
	if _, err := w.dir.UpdateDomain(ctx, w.admin, w.domain, []byte(patch)); err != nil {
		t.Fatal(err)
	}
	before := len(sent(t, w.extAddr("ana-home")))
	d = w.deliver(t, simple(sender, w.addr("nobody"), "Hi"), sender, nil, w.addr("nobody"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Deliver || r.Kind != "catch-all" {
		t.Errorf("catch-all: %+v", r)
	}
	if n := len(sent(t, w.extAddr("ana-home"))) - before; n != 1 {
		t.Errorf("catch-all mailbox's destination got %d new", n)
	}
}

func TestLoopsAreNotForwarded(t *testing.T) {
	w := newWorld(t, nil)
	w.group(t, "ring", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("ring-dest")))
	sender := "someone@client.test"
	d := w.deliver(t, simple(sender, w.addr("ring"), "Round", routing.LoopField+": "+w.addr("ring")), sender, nil, w.addr("ring"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Loop {
		t.Errorf("marked message: %+v", r)
	}
	// The same Message-ID coming round without the mark (a hop that strips headers).
	raw := simple(sender, w.addr("ring"), "Again")
	w.deliver(t, raw, sender, nil, w.addr("ring"))
	w.explainDiffers = true
	w.deliver(t, raw, sender, nil, w.addr("ring"))
	w.explainDiffers = false
	if n := len(sent(t, w.extAddr("ring-dest"))); n != 1 {
		t.Errorf("the same Message-ID through the same group twice: %d sends, want 1", n)
	}
	// Too many hops.
	var hops []string
	for i := range routing.DefaultMaxHops {
		hops = append(hops, fmt.Sprintf("Received: from relay%d.test by relay%d.test", i, i+1))
	}
	d = w.deliver(t, simple(sender, w.addr("ring"), "Hops", hops...), sender, nil, w.addr("ring"))
	if r := d.decision.Recipients[0]; r.Outcome != routing.Drop || !strings.Contains(r.Reason, "hops") {
		t.Errorf("hop limit: %+v", r)
	}
}

func TestBatchesOfFifty(t *testing.T) {
	w := newWorld(t, nil)
	var members []directory.Member
	for i := range 120 {
		members = append(members, ext(w.extAddr(fmt.Sprintf("m%03d", i))))
	}
	w.group(t, "all", directory.Posting{Policy: directory.PostAnyone}, members...)
	sender := "someone@client.test"
	d := w.deliver(t, simple(sender, w.addr("all"), "Everyone"), sender, nil, w.addr("all"))
	if n := len(destinations(d.decision)); n != 120 {
		t.Fatalf("%d destinations", n)
	}
	seen := map[string]int{}
	sizes := map[string]int{}
	for i := range 120 {
		for _, m := range sent(t, w.extAddr(fmt.Sprintf("m%03d", i))) {
			seen[m.MessageId]++
			sizes[m.MessageId] = len(m.Recipients)
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d sends for 120 destinations, want 3", len(seen))
	}
	for id, n := range sizes {
		if n > 50 {
			t.Errorf("send %s has %d recipients", id, n)
		}
	}
}

func TestOversizeBecomesANoticeWithALink(t *testing.T) {
	w := newWorld(t, func(c *inbound.Config) { c.MaxSendBytes, c.LinkBaseURL = 2000, "https://api.mailroom.test" })
	w.group(t, "big", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("big-dest")))
	sender := w.extAddr("sender")
	raw := simple(sender, w.addr("big"), "Large file") + strings.Repeat("x", 3000) + "\r\n"
	w.deliver(t, raw, sender, nil, w.addr("big"))
	msgs := sent(t, w.extAddr("big-dest"))
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if len(msgs[0].Raw) > 2000 {
		t.Errorf("want a short notice, got %d bytes", len(msgs[0].Raw))
	}
	if n := len(sent(t, sender)); n != 1 {
		t.Errorf("the sender was told %d times, want 1", n)
	}

	// The link works through the admin API: it redirects to a download of the original.
	msg, err := mail.ReadMessage(strings.NewReader(msgs[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	var link string
	for _, f := range strings.Fields(string(body)) {
		if strings.HasPrefix(f, "https://api.mailroom.test/originals/") {
			link = f
		}
	}
	if link == "" {
		t.Fatalf("no link to the original in the notice:\n%s", body)
	}
	h, err := admin.New(admin.Config{DirectoryTable: w.cfg.DirectoryTable, AuditTable: devstacktest.Table(t, "AuditTable"),
		StateTable: w.cfg.StateTable, MailBucket: w.cfg.MailBucket}, w.clients, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	defer api.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	link = strings.Replace(link, "https://api.mailroom.test", api.URL, 1)
	resp := get(link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("following the link: %d", resp.StatusCode)
	}
	download := get(resp.Header.Get("Location"))
	got, _ := io.ReadAll(download.Body)
	download.Body.Close()
	if download.StatusCode != 200 || string(got) != raw {
		t.Errorf("the download is not the original (%d, %d bytes)", download.StatusCode, len(got))
	}
	forged := get(strings.Replace(link, "token=", "token=1", 1))
	forged.Body.Close()
	if forged.StatusCode != http.StatusForbidden {
		t.Errorf("a forged link: %d, want 403", forged.StatusCode)
	}
}

// TestEveryConditionAndAction runs one rule per condition type end to end: the rule labels the
// message when its condition holds, and the archive record shows it.
func TestEveryConditionAndAction(t *testing.T) {
	w := newWorld(t, nil)
	w.group(t, "desk", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("desk-dest")))
	w.group(t, "extra", directory.Posting{Policy: directory.PostAnyone}, ext(w.extAddr("extra-dest")))
	sender := "client@client.test"
	pdf := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	conditions := []struct {
		name string
		cond string
	}{
		{"sender", `{"type":"sender","pattern":"*@client.test"}`},
		{"senderdomain", `{"type":"senderDomain","pattern":"client.test"}`},
		{"recipient", fmt.Sprintf(`{"type":"recipient","pattern":"desk@%s"}`, w.domain)},
		{"subject", `{"type":"subject","pattern":"(?i)urgent"}`},
		{"header", `{"type":"header","name":"X-Customer","pattern":"^gold$"}`},
		{"hasattachment", `{"type":"hasAttachment","value":false}`},
		{"attachmenttype", `{"type":"attachmentType","pattern":"application/pdf"}`},
		{"size", `{"type":"size","max":100000}`},
		{"verdict", `{"type":"verdict","check":"spf","status":"PASS"}`},
		{"senderkind", `{"type":"senderKind","value":"external"}`},
		{"time", `{"type":"time","timeZone":"UTC","from":"00:00","to":"23:59"}`},
	}
	_ = pdf
	for i, c := range conditions {
		var r routing.Rule
		body := fmt.Sprintf(`{"id":"c-%s","name":"condition %s","priority":%d,"when":[%s],"actions":[{"type":"label","value":"c-%s"}]}`, c.name, c.name, i, c.cond, c.name)
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		w.rule(t, r)
	}
	var never routing.Rule
	_ = json.Unmarshal([]byte(`{"id":"never","name":"never","priority":50,"when":[{"type":"subject","pattern":"urgent"}],"unless":[{"type":"sender","pattern":"*@client.test"}],"actions":[{"type":"label","value":"never"}]}`), &never)
	w.rule(t, never)
	var acts routing.Rule
	if err := json.Unmarshal([]byte(fmt.Sprintf(`{"id":"acts","name":"actions","priority":60,"actions":[
		{"type":"priority","value":"high"},{"type":"sla","value":"gold"},
		{"type":"addHeader","name":"X-Desk","value":"gold customer"},
		{"type":"forward","group":"extra"},{"type":"forward","to":%q}]}`, w.extAddr("copy"))), &acts); err != nil {
		t.Fatal(err)
	}
	w.rule(t, acts)

	raw := simple(sender, w.addr("desk"), "URGENT: broken", "X-Customer: gold")
	d := w.deliver(t, raw, sender, nil, w.addr("desk"))
	rec, err := w.index.Get(context.Background(), d.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conditions {
		want := c.name != "attachmenttype" // the message has no attachment
		if got := slices.Contains(rec.Labels, "c-"+c.name); got != want {
			t.Errorf("condition %s: labelled %v, want %v (labels %v)", c.name, got, want, rec.Labels)
		}
	}
	if slices.Contains(rec.Labels, "never") {
		t.Error("unless did not stop the rule")
	}
	if rec.Priority != "high" || rec.SLA != "gold" {
		t.Errorf("priority %q sla %q", rec.Priority, rec.SLA)
	}
	desk := sent(t, w.extAddr("desk-dest"))
	if len(desk) != 1 || header(t, desk[0].Raw).Get("X-Desk") != "gold customer" {
		t.Errorf("addHeader: %d messages", len(desk))
	}
	if n := len(sent(t, w.extAddr("extra-dest"))); n != 1 {
		t.Errorf("forward to group: %d", n)
	}
	if n := len(sent(t, w.extAddr("copy"))); n != 1 {
		t.Errorf("forward to address: %d", n)
	}

	// Verdict actions: quarantine, reject, drop, stop.
	for _, c := range []struct{ action, outcome string }{
		{"quarantine", routing.Quarantine}, {"reject", routing.Bounce}, {"drop", routing.Drop},
	} {
		var r routing.Rule
		_ = json.Unmarshal([]byte(fmt.Sprintf(`{"id":"v-%s","name":"%s","priority":1,"when":[{"type":"subject","pattern":"^%s$"}],"actions":[{"type":"%s"}]}`, c.action, c.action, c.action, c.action)), &r)
		w.rule(t, r)
		before := len(sent(t, w.extAddr("desk-dest")))
		d := w.deliver(t, simple(sender, w.addr("desk"), c.action), sender, nil, w.addr("desk"))
		if got := d.decision.Recipients[0].Outcome; got != c.outcome {
			t.Errorf("%s: outcome %s, want %s", c.action, got, c.outcome)
		}
		if n := len(sent(t, w.extAddr("desk-dest"))) - before; n != 0 {
			t.Errorf("%s: delivered %d", c.action, n)
		}
	}
	var stop routing.Rule
	_ = json.Unmarshal([]byte(`{"id":"a-stop","name":"stop","priority":0,"when":[{"type":"subject","pattern":"^calm$"}],"actions":[{"type":"label","value":"stopped"},{"type":"stop"}]}`), &stop)
	w.rule(t, stop)
	d = w.deliver(t, simple(sender, w.addr("desk"), "calm"), sender, nil, w.addr("desk"))
	rec, _ = w.index.Get(context.Background(), d.id)
	if !slices.Equal(rec.Labels, []string{"stopped"}) {
		t.Errorf("after stop, labels = %v", rec.Labels)
	}
}

// TestModerationEndToEnd holds a post to a moderated group, asks its owner with signed links,
// and lets the links approve one post (released to the group) and reject another (the author is
// told), through the admin API's public pages.
func TestModerationEndToEnd(t *testing.T) {
	w := newWorld(t, func(c *inbound.Config) { c.LinkBaseURL = "https://api.mailroom.test" })
	w.mailbox(t, "boss", w.extAddr("boss-home"))
	w.group(t, "board", directory.Posting{Policy: directory.PostModerated}, ext(w.extAddr("board-dest")))
	cfg := admin.Config{DirectoryTable: w.cfg.DirectoryTable, AuditTable: devstacktest.Table(t, "AuditTable"),
		StateTable: w.cfg.StateTable, MailBucket: w.cfg.MailBucket}
	h, err := admin.New(cfg, w.clients, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	defer api.Close()

	sender := w.extAddr("author")
	links := func(subject string) (approve, reject string) {
		t.Helper()
		d := w.deliver(t, simple(sender, w.addr("board"), subject), sender, nil, w.addr("board"))
		if r := d.decision.Recipients[0]; r.Outcome != routing.Hold {
			t.Fatalf("outcome %s", r.Outcome)
		}
		for _, m := range sent(t, w.addr("boss")) {
			msg, err := mail.ReadMessage(strings.NewReader(m.Raw))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
			if !strings.Contains(string(body), subject) {
				continue
			}
			for _, f := range strings.Fields(string(body)) {
				switch {
				case strings.Contains(f, "action=approve"):
					approve = strings.Replace(f, "https://api.mailroom.test", api.URL, 1)
				case strings.Contains(f, "action=reject"):
					reject = strings.Replace(f, "https://api.mailroom.test", api.URL, 1)
				}
			}
		}
		if approve == "" || reject == "" {
			t.Fatalf("no moderation request with links for %q reached the owner", subject)
		}
		return approve, reject
	}
	follow := func(link string, form url.Values) string {
		t.Helper()
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = http.Get(link)
		} else {
			resp, err = http.PostForm(link, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", link, resp.StatusCode, b)
		}
		return string(b)
	}

	approve, _ := links("Board paper")
	if n := len(sent(t, w.extAddr("board-dest"))); n != 0 {
		t.Fatalf("held mail reached the group: %d", n)
	}
	page := follow(approve, nil) // a link scanner following the link decides nothing
	if !strings.Contains(page, "<form") || len(sent(t, w.extAddr("board-dest"))) != 0 {
		t.Fatal("opening the link must show a form and change nothing")
	}
	u, _ := url.Parse(approve)
	tampered := u.Query()
	tampered.Set("action", "reject")
	resp, err := http.PostForm(strings.Split(approve, "?")[0], tampered)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an approve token used to reject: %d, want 403", resp.StatusCode)
	}
	follow(strings.Split(approve, "?")[0], u.Query())
	msgs := sent(t, w.extAddr("board-dest"))
	if len(msgs) != 1 || !strings.Contains(msgs[0].Raw, "Board paper") {
		t.Fatalf("approved mail: %d messages to the group", len(msgs))
	}
	follow(strings.Split(approve, "?")[0], u.Query()) // approving again sends nothing more
	if n := len(sent(t, w.extAddr("board-dest"))); n != 1 {
		t.Errorf("a second approval sent again: %d", n)
	}

	_, reject := links("Spam offer")
	u, _ = url.Parse(reject)
	form := u.Query()
	form.Set("reason", "Off topic for the board")
	before := len(sent(t, sender))
	follow(strings.Split(reject, "?")[0], form)
	told := sent(t, sender)
	if len(told) != before+1 || !strings.Contains(told[0].Raw, "Off topic for the board") {
		t.Errorf("the author was not told why (%d messages)", len(told)-before)
	}
	if n := len(sent(t, w.extAddr("board-dest"))); n != 1 {
		t.Errorf("rejected mail reached the group: %d", n)
	}
}
