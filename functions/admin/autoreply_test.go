package admin_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// replyEnv is env with what the inbound function shares with the API: the directory and the
// ledger of automatic replies sent, so a test can answer a sender as the inbound function does.
type replyEnv struct {
	*env
	dir    *dynamo.Directory
	ledger *dynamo.AutoReplies
}

func newReplyEnv(t *testing.T) *replyEnv {
	t.Helper()
	e := newEnv(t)
	e.seed()
	return &replyEnv{env: e,
		dir:    dynamo.NewDirectory(e.clients.DynamoDB, e.cfg.DirectoryTable, ""),
		ledger: dynamo.NewAutoReplies(e.clients.DynamoDB, e.cfg.StateTable)}
}

// answered records that the inbound function sent the automatic replies raw gets at at, as it
// does once each reply is sent.
func (e *replyEnv) answered(raw string, to []string, at time.Time) {
	e.t.Helper()
	ctx := context.Background()
	m, err := mail.Parse(strings.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	env := routing.Envelope{ID: "sent", EnvelopeFrom: m.From[0].Address, Recipients: to, ReceivedAt: at,
		Verdicts: routing.Verdicts{Spam: "PASS", Virus: "PASS", SPF: "PASS", DKIM: "PASS", DMARC: "PASS"}}
	msg, err := routing.MessageOf(ctx, e.dir, env, m)
	if err != nil {
		e.t.Fatal(err)
	}
	router := &routing.Router{Directory: e.dir, Rules: routing.StoredRules{Store: e.dir}, Closed: autoreply.ClosedNotices{Settings: e.dir}}
	dec, err := router.Decide(ctx, msg)
	if err != nil {
		e.t.Fatal(err)
	}
	p := &autoreply.Planner{Settings: e.dir, Directory: e.dir, Ledger: e.ledger}
	replies, err := p.Plan(ctx, msg, m, dec)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range replies {
		if r.Verdict.Reply {
			if err := p.Record(ctx, r, at); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// auditActions lists the actions recorded on a resource, oldest first, as "action by subject".
func (e *env) auditActions(resource string) []string {
	e.t.Helper()
	var page struct {
		Items []struct {
			Action string
			Actor  struct{ Subject string }
		}
	}
	if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/audit?resource="+resource, nil).body, &page); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, it := range slices.Backward(page.Items) {
		out = append(out, it.Action+" by "+it.Actor.Subject)
	}
	return out
}

// TestOutOfOfficeSetting: an employee sets, reads, changes and removes their own out-of-office
// reply with ETags; a stale If-Match changes nothing; they cannot touch another person's reply or
// their mailbox's closed notice; an auditor reads but cannot write; every write is audited.
func TestOutOfOfficeSetting(t *testing.T) {
	e := newEnv(t)
	e.seed()
	const path = "/mailboxes/ana@example.com/out-of-office"
	e.must(employeeAna, 404, "GET", path, nil)

	body := map[string]any{"enabled": true, "start": "2026-11-20T09:00", "end": "2026-12-01T09:00", "timeZone": "Asia/Kuala_Lumpur",
		"internal": []any{map[string]any{"language": "en", "subject": "Away{{with .OriginalSubject}}: {{.}}{{end}}", "body": "Back on {{date .Until}}.\n"}}}
	created := e.must(employeeAna, 201, "PUT", path, body)
	if got := created.header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag after create %q, want \"1\"", got)
	}
	if got := created.json(t); got["mailbox"] != "ana@example.com" || got["audience"] != "everyone" || got["enabled"] != true || got["version"] != float64(1) {
		t.Errorf("created = %v, want Ana's mailbox, audience everyone, enabled, version 1", got)
	}
	// The same PUT replaces: 200 and the next version.
	if got := e.must(employeeAna, 200, "PUT", path, body).header.Get("ETag"); got != `"2"` {
		t.Errorf("ETag after replace %q, want \"2\"", got)
	}
	// The address is read as the directory keeps it.
	if got := e.must(employeeAna, 200, "GET", "/mailboxes/Ana@EXAMPLE.com/out-of-office", nil).header.Get("ETag"); got != `"2"` {
		t.Errorf("GET ETag %q, want \"2\"", got)
	}

	patched := e.must(employeeAna, 200, "PATCH", path, map[string]any{"audience": "internal", "timeZone": nil}, "If-Match", `"2"`)
	if got := patched.json(t); got["audience"] != "internal" || got["timeZone"] != nil || got["end"] != "2026-12-01T09:00" || got["version"] != float64(3) {
		t.Errorf("patched = %v, want audience internal, no time zone, the end kept, version 3", got)
	}
	e.must(employeeAna, 412, "PATCH", path, map[string]any{"enabled": false}, "If-Match", `"2"`)
	e.must(employeeAna, 412, "PUT", path, body, "If-Match", `"2"`)
	e.must(employeeAna, 412, "DELETE", path, nil, "If-Match", `"2"`)
	if got := e.must(employeeAna, 200, "GET", path, nil).json(t); got["enabled"] != true || got["version"] != float64(3) {
		t.Errorf("after stale writes = %v, want version 3 unchanged", got)
	}

	// Others' settings, and kinds an employee does not manage.
	e.must(employeeAna, 403, "GET", "/mailboxes/boss@example.com/out-of-office", nil)
	e.must(employeeAna, 403, "PUT", "/mailboxes/boss@example.com/out-of-office", map[string]any{"enabled": true})
	e.must(employeeAna, 403, "GET", "/mailboxes/ana@example.com/closed-notice", nil)
	e.must(employeeAna, 403, "PUT", "/mailboxes/ana@example.com/closed-notice", map[string]any{"enabled": true})
	e.must(managerUser, 403, "GET", path, nil)
	e.must(nobody, 403, "GET", path, nil)
	// An auditor reads and cannot write.
	e.must(auditorUser, 200, "GET", path, nil)
	e.must(auditorUser, 403, "PUT", path, body)
	e.must(auditorUser, 403, "PATCH", path, map[string]any{"enabled": false})
	e.must(auditorUser, 403, "DELETE", path, nil)
	// An admin sets anyone's.
	e.must(adminUser, 201, "PUT", "/mailboxes/boss@example.com/out-of-office", map[string]any{"enabled": true, "repeatDays": 3})

	e.must(employeeAna, 204, "DELETE", path, nil, "If-Match", `"3"`)
	e.must(employeeAna, 404, "GET", path, nil)
	e.must(employeeAna, 404, "PATCH", path, map[string]any{"enabled": true})
	e.must(employeeAna, 404, "DELETE", path, nil)

	want := []string{"out-of-office.create by u-ana", "out-of-office.update by u-ana", "out-of-office.update by u-ana", "out-of-office.delete by u-ana"}
	if got := e.auditActions("out-of-office:ana@example.com"); !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
}

// TestAcknowledgementSetting: a group's owner sets its acknowledgement, with business hours;
// other employees and the owner of another group cannot; an auditor reads it.
func TestAcknowledgementSetting(t *testing.T) {
	e := newEnv(t)
	e.seed()
	const path = "/groups/sales/acknowledgement"
	body := map[string]any{"enabled": true, "promiseHours": 8, "language": "ms",
		"calendar": map[string]any{"timeZone": "Asia/Kuala_Lumpur", "hours": map[string]any{
			"mon": []string{"13:30-18:00", "09:00-12:30"}, "tue": []string{"09:00-12:00", "12:00-18:00"}}}}
	got := e.must(managerUser, 201, "PUT", path, body).json(t)
	cal, _ := got["calendar"].(map[string]any)
	hours, _ := cal["hours"].(map[string]any)
	if got["group"] != "sales" || got["promiseHours"] != float64(8) ||
		jsonOf(t, hours["mon"]) != `["09:00-12:30","13:30-18:00"]` || jsonOf(t, hours["tue"]) != `["09:00-18:00"]` {
		t.Errorf("created = %v, want the group, the promise and the hours sorted and merged", got)
	}
	e.must(managerUser, 200, "GET", path, nil)
	e.must(auditorUser, 200, "GET", path, nil)
	e.must(auditorUser, 403, "PATCH", path, map[string]any{"enabled": false})
	e.must(employeeAna, 403, "GET", path, nil)
	e.must(employeeAna, 403, "PUT", path, body)
	e.must(managerUser, 403, "PUT", "/groups/other/acknowledgement", map[string]any{"enabled": true})
	e.must(managerUser, 403, "GET", "/groups/nope/acknowledgement", nil)

	// A patch merges into the stored calendar: Tuesday closes, Monday stays.
	got = e.must(managerUser, 200, "PATCH", path, map[string]any{"calendar": map[string]any{"hours": map[string]any{"tue": nil, "wed": []string{"10:00-16:00"}}}}, "If-Match", `"1"`).json(t)
	hours = got["calendar"].(map[string]any)["hours"].(map[string]any)
	if _, ok := hours["tue"]; ok || hours["mon"] == nil || hours["wed"] == nil {
		t.Errorf("hours after the patch = %v, want mon and wed", hours)
	}
	e.must(managerUser, 412, "PATCH", path, map[string]any{"promiseHours": 4}, "If-Match", `"1"`)
	e.must(managerUser, 204, "DELETE", path, nil)

	want := []string{"acknowledgement.create by u-boss", "acknowledgement.update by u-boss", "acknowledgement.delete by u-boss"}
	if got := e.auditActions("acknowledgement:sales"); !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClosedNoticeSetting: admins set a closed mailbox's notice; auditors read it; nobody else
// may.
func TestClosedNoticeSetting(t *testing.T) {
	e := newEnv(t)
	e.seed()
	const path = "/mailboxes/carl@example.com/closed-notice"
	got := e.must(adminUser, 201, "PUT", path, map[string]any{"enabled": true, "successor": "Boss@Example.com", "forward": true}).json(t)
	if got["mailbox"] != "carl@example.com" || got["successor"] != "boss@example.com" || got["forward"] != true {
		t.Errorf("created = %v, want the successor normalised and forward", got)
	}
	got = e.must(adminUser, 200, "PATCH", path, map[string]any{"forward": nil}, "If-Match", `"1"`).json(t)
	if _, ok := got["forward"]; ok || got["successor"] != "boss@example.com" {
		t.Errorf("patched = %v, want no forward and the successor kept", got)
	}
	e.must(auditorUser, 200, "GET", path, nil)
	e.must(auditorUser, 403, "DELETE", path, nil)
	e.must(managerUser, 403, "GET", path, nil)
	e.must(employeeAna, 403, "PUT", "/mailboxes/ana@example.com/closed-notice", map[string]any{"enabled": true})
	e.must(adminUser, 204, "DELETE", path, nil)

	want := []string{"closed-mailbox.create by u-admin", "closed-mailbox.update by u-admin", "closed-mailbox.delete by u-admin"}
	if got := e.auditActions("closed-mailbox:carl@example.com"); !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
}

// TestAutoReplyInvalidInput: each invalid setting or query gets a problem naming the field, and
// changes nothing.
func TestAutoReplyInvalidInput(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.must(adminUser, 201, "PUT", "/mailboxes/boss@example.com/out-of-office", map[string]any{"enabled": true, "start": "2026-11-20"})
	auditBefore := len(e.must(adminUser, 200, "GET", "/audit?limit=1000", nil).json(t)["items"].([]any))

	const ooo, ack, closed = "/mailboxes/ana@example.com/out-of-office", "/groups/sales/acknowledgement", "/mailboxes/carl@example.com/closed-notice"
	text := func(lang, subject, body string) map[string]any {
		return map[string]any{"language": lang, "subject": subject, "body": body}
	}
	tests := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"a template field that does not exist", "PUT", ooo, map[string]any{"internal": []any{text("en", "Away", "Hello {{.Nope}}")}}, 400, "internal[0].body"},
		{"a function templates may not call", "PUT", ooo, map[string]any{"external": []any{text("en", "Away", "ok"), text("ms", `{{printf "%s" .Name}}`, "ok")}}, 400, "external[1].subject"},
		{"a template without a language", "PUT", ooo, map[string]any{"internal": []any{text("", "Away", "ok")}}, 400, "internal[0].language"},
		{"an end before the start", "PUT", ooo, map[string]any{"start": "2026-12-20", "end": "2026-12-01"}, 400, "end"},
		{"an end that is no time", "PUT", ooo, map[string]any{"end": "next Monday"}, 400, "end"},
		{"an unknown time zone", "PUT", ooo, map[string]any{"timeZone": "Mars/Olympus_Mons"}, 400, "timeZone"},
		{"an unknown audience", "PUT", ooo, map[string]any{"audience": "friends"}, 400, "audience"},
		{"a language no reply is written in", "PUT", ooo, map[string]any{"language": "fr"}, 400, "language"},
		{"too many repeat days", "PUT", ooo, map[string]any{"repeatDays": 400}, 400, "repeatDays"},
		{"an unknown field", "PUT", ooo, map[string]any{"vacation": true}, 400, "vacation"},
		{"another mailbox in the body", "PUT", ooo, map[string]any{"mailbox": "boss@example.com"}, 400, "mailbox"},
		{"a mailbox that does not exist", "PUT", "/mailboxes/ghost@example.com/out-of-office", map[string]any{"enabled": true}, 400, "mailbox"},
		{"a path that is not an address", "GET", "/mailboxes/not-an-address/out-of-office", nil, 400, "address"},
		{"a patch that makes the period backwards", "PATCH", "/mailboxes/boss@example.com/out-of-office", map[string]any{"end": "2026-11-01"}, 400, "end"},
		{"a patch that is not an object", "PATCH", "/mailboxes/boss@example.com/out-of-office", `[1]`, 400, "body"},
		{"a text body", "PUT", ooo, `enabled`, 400, "body"},
		{"a range that ends before it starts", "PUT", ack, map[string]any{"calendar": map[string]any{"timeZone": "UTC", "hours": map[string]any{"mon": []string{"17:00-09:00"}}}}, 400, "calendar.hours.mon[0]"},
		{"a calendar without a time zone", "PUT", ack, map[string]any{"calendar": map[string]any{"hours": map[string]any{"mon": []string{"09:00-17:00"}}}}, 400, "calendar.timeZone"},
		{"a negative promise", "PUT", ack, map[string]any{"promiseHours": -1}, 400, "promiseHours"},
		{"a language given twice", "PUT", ack, map[string]any{"templates": []any{text("ms", "A", "b"), text("ms-MY", "A", "b")}}, 400, "templates[1].language"},
		{"a group that does not exist", "PUT", "/groups/ghosts/acknowledgement", map[string]any{"enabled": true}, 400, "group"},
		{"forwarding without a successor", "PUT", closed, map[string]any{"enabled": true, "forward": true}, 400, "forward"},
		{"the mailbox as its own successor", "PUT", closed, map[string]any{"successor": "carl@example.com"}, 400, "successor"},
		{"templates of an unknown kind", "GET", "/autoreplies/templates?kind=holiday", nil, 400, "kind"},
		{"templates in an unknown language", "GET", "/autoreplies/templates?language=fr", nil, 400, "language"},
		{"a preview without recipients", "POST", "/autoreplies/preview", rfc822(explainMessage), 400, "to"},
		{"a preview with limits=maybe", "POST", "/autoreplies/preview?to=sales@example.com&limits=maybe", rfc822(explainMessage), 400, "limits"},
		{"a preview at no time", "POST", "/autoreplies/preview?to=sales@example.com&at=soon", rfc822(explainMessage), 400, "at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(adminUser, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if p := r.json(t); p["field"] != tt.field {
				t.Errorf("field = %v, want %q (%v)", p["field"], tt.field, p["detail"])
			}
		})
	}
	if n := len(e.must(adminUser, 200, "GET", "/audit?limit=1000", nil).json(t)["items"].([]any)); n != auditBefore {
		t.Errorf("audit log has %d entries after invalid requests, want %d", n, auditBefore)
	}
	e.must(adminUser, 404, "GET", ooo, nil)
}

// TestAutoReplyTemplatesAndRules: every shipped text, filtered by kind and language, with what a
// template may use; and the rules of when not to reply.
func TestAutoReplyTemplatesAndRules(t *testing.T) {
	e := newEnv(t)
	type catalog struct {
		Templates []struct{ Kind, Language, Subject, Body string }
		Languages []string
		Variables []struct{ Name, Description string }
		Functions []struct{ Name string }
	}
	read := func(query string) catalog {
		t.Helper()
		var c catalog
		if err := json.Unmarshal(e.must(employeeAna, 200, "GET", "/autoreplies/templates"+query, nil).body, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	all := read("")
	if len(all.Templates) != 15 || !slices.Equal(all.Languages, autoreply.Languages()) {
		t.Errorf("%d templates in %q, want 3 kinds × 5 languages in %q", len(all.Templates), all.Languages, autoreply.Languages())
	}
	var vars []string
	for _, v := range all.Variables {
		if v.Description == "" {
			t.Errorf("variable %s has no description", v.Name)
		}
		vars = append(vars, v.Name)
	}
	if want := []string{"SenderName", "SenderAddress", "OriginalSubject", "Recipient", "Name", "Until", "PromisedBy", "BusinessHours", "Successor"}; !slices.Equal(vars, want) {
		t.Errorf("variables = %q, want %q", vars, want)
	}
	if len(all.Functions) != 2 || all.Functions[0].Name != "date" || all.Functions[1].Name != "datetime" {
		t.Errorf("functions = %v, want date and datetime", all.Functions)
	}
	// Every variable listed is one a template can use.
	for _, v := range vars {
		if _, err := autoreply.Parse(autoreply.Template{Language: "en", Subject: "x", Body: "{{if ." + v + "}}y{{end}}z"}); err != nil {
			t.Errorf("variable %s is listed but a template cannot use it: %v", v, err)
		}
	}

	one := read("?kind=closed-mailbox&language=ZH-hant")
	want, _ := autoreply.Defaults(autoreply.KindClosed, "zh-Hant")
	if len(one.Templates) != 1 || one.Templates[0].Kind != "closed-mailbox" || one.Templates[0].Language != "zh-Hant" ||
		one.Templates[0].Subject != want.Subject || one.Templates[0].Body != want.Body {
		t.Errorf("closed-mailbox in zh-Hant = %+v, want the shipped text", one.Templates)
	}
	e.must(nobody, 403, "GET", "/autoreplies/templates", nil)

	var rules struct{ Items []autoreply.Rule }
	if err := json.Unmarshal(e.must(managerUser, 200, "GET", "/autoreplies/rules", nil).body, &rules); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rules.Items, autoreply.Rules()) {
		t.Errorf("rules = %v, want autoreply.Rules()", rules.Items)
	}
	e.must(nobody, 403, "GET", "/autoreplies/rules", nil)
}

// message is a message from Kim to the given To field, with extra header fields.
func message(to, subject string, fields ...string) string {
	h := "From: Kim Tan <kim@client.example>\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@client.example>\r\n"
	for _, f := range fields {
		h += f + "\r\n"
	}
	return h + "\r\nHello.\r\n"
}

type previewed struct {
	Replies []struct {
		Kind, Recipient, Responder, To string
		From                           mail.Address
		Verdict                        autoreply.Verdict
		Language, Subject, Body        string
	}
}

func (e *env) preview(who apigw.Claims, query, raw string) previewed {
	e.t.Helper()
	var p previewed
	if err := json.Unmarshal(e.must(who, 200, "POST", "/autoreplies/preview?"+query, rfc822(raw)).body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestAutoReplyPreview previews the replies to messages: the rendered out-of-office reply, the
// rules that stop one, the ledger of replies already sent, a group's acknowledgement and a closed
// mailbox's notice; and who may preview what.
func TestAutoReplyPreview(t *testing.T) {
	e := newReplyEnv(t)
	e.must(employeeAna, 201, "PUT", "/mailboxes/ana@example.com/out-of-office", map[string]any{
		"enabled": true, "start": "2026-11-20", "end": "2026-12-01T09:00"})
	const at = "at=2026-11-23T09:00:00Z"
	invoice := message("Ana Lim <ana@example.com>", "Invoice 42")

	p := e.preview(employeeAna, "to=ana@example.com&"+at, invoice)
	if len(p.Replies) != 1 {
		t.Fatalf("replies = %+v, want one", p.Replies)
	}
	r := p.Replies[0]
	if r.Kind != "out-of-office" || r.Recipient != "ana@example.com" || r.Responder != "mailbox:ana@example.com" ||
		r.From != (mail.Address{Name: "Ana Lim", Address: "ana@example.com"}) || r.To != "kim@client.example" ||
		!r.Verdict.Reply || r.Language != "en" || r.Subject != "Automatic reply: Invoice 42" {
		t.Errorf("reply = %+v", r)
	}
	for _, want := range []string{"Hello Kim Tan,", "will be back on Tuesday, 1 December 2026", "Ana Lim"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, r.Body)
		}
	}

	// The rules of when not to reply.
	for _, tt := range []struct {
		name, raw, rule, source string
	}{
		{"auto-generated", message("ana@example.com", "Report", "Auto-Submitted: auto-generated"), "auto-submitted", "RFC 3834"},
		{"a mailing list", message("ana@example.com", "News", "List-Id: <news.client.example>"), "list-headers", "RFC 2919"},
		{"a blind copy", message("someone@client.example", "Invoice 43"), "not-addressed-directly", "RFC 5230 §4.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := e.preview(adminUser, "to=ana@example.com&"+at, tt.raw)
			if len(p.Replies) != 1 {
				t.Fatalf("replies = %+v, want one", p.Replies)
			}
			v := p.Replies[0].Verdict
			if v.Reply || v.Rule != tt.rule || !strings.Contains(v.Source, tt.source) || v.Reason == "" {
				t.Errorf("verdict = %+v, want rule %s from %s", v, tt.rule, tt.source)
			}
		})
	}
	// Outside the period nobody answers.
	if p := e.preview(adminUser, "to=ana@example.com&at=2026-12-02T09:00:00Z", invoice); len(p.Replies) != 0 {
		t.Errorf("replies after the end = %+v, want none", p.Replies)
	}

	// Once the inbound function has answered Kim, the preview says so; without limits it shows
	// the reply Kim would get the first time.
	e.answered(invoice, []string{"ana@example.com"}, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	if v := e.preview(employeeAna, "to=ana@example.com&"+at, invoice).Replies[0].Verdict; v.Reply || v.Rule != "already-answered" {
		t.Errorf("verdict after a reply was sent = %+v, want already-answered", v)
	}
	if v := e.preview(employeeAna, "to=ana@example.com&limits=false&"+at, invoice).Replies[0].Verdict; !v.Reply {
		t.Errorf("verdict without limits = %+v, want a reply", v)
	}

	// A group's acknowledgement, previewed by its owner; a reply in a conversation gets none.
	e.must(adminUser, 200, "PATCH", "/groups/sales", map[string]any{"posting": map[string]any{"policy": "anyone"}})
	e.must(managerUser, 201, "PUT", "/groups/sales/acknowledgement", map[string]any{"enabled": true, "promiseHours": 4,
		"calendar": map[string]any{"timeZone": "Asia/Kuala_Lumpur", "hours": map[string]any{"mon": []string{"09:00-17:00"}, "tue": []string{"09:00-17:00"}}}})
	order := message("sales@example.com", "Order 7")
	p = e.preview(managerUser, "to=sales@example.com&"+at, order)
	if len(p.Replies) != 1 || p.Replies[0].Kind != "acknowledgement" || p.Replies[0].Responder != "group:sales" || !p.Replies[0].Verdict.Reply ||
		!strings.Contains(p.Replies[0].Body, "Thank you for contacting Sales") || !strings.Contains(p.Replies[0].Body, "24 November 2026") {
		t.Errorf("acknowledgement = %+v", p.Replies)
	}
	p = e.preview(managerUser, "to=sales@example.com&"+at, message("sales@example.com", "Re: Order 7", "In-Reply-To: <Order.7@client.example>"))
	if len(p.Replies) != 1 || p.Replies[0].Verdict.Rule != "not-new" {
		t.Errorf("acknowledgement of a reply = %+v, want not-new", p.Replies)
	}

	// A closed mailbox answers with its notice, through routing's closed outcome.
	e.must(adminUser, 200, "PATCH", "/mailboxes/carl@example.com", map[string]any{"status": "closed"})
	e.must(adminUser, 201, "PUT", "/mailboxes/carl@example.com/closed-notice", map[string]any{"enabled": true, "successor": "boss@example.com"})
	p = e.preview(auditorUser, "to=carl@example.com&"+at, message("carl@example.com", "Hello Carl"))
	if len(p.Replies) != 1 || p.Replies[0].Kind != "closed-mailbox" || !p.Replies[0].Verdict.Reply || !strings.Contains(p.Replies[0].Body, "boss@example.com") {
		t.Errorf("closed notice = %+v", p.Replies)
	}

	// Nobody answers a mailbox without a reply.
	if p := e.preview(adminUser, "to=boss@example.com&"+at, message("boss@example.com", "Hi")); p.Replies == nil || len(p.Replies) != 0 {
		t.Errorf("replies for a mailbox without settings = %+v, want an empty list", p.Replies)
	}

	// Who may preview what.
	for _, tt := range []struct {
		name  string
		who   apigw.Claims
		query string
		want  int
	}{
		{"an employee, another's mailbox", employeeAna, "to=boss@example.com", 403},
		{"an employee, their own and another's", employeeAna, "to=ana@example.com&to=boss@example.com", 403},
		{"an employee, a group they do not own", employeeAna, "to=sales@example.com", 403},
		{"an employee, an alias of a group", employeeAna, "to=info@example.com", 403},
		{"a group owner, a member's mailbox", managerUser, "to=ana@example.com", 403},
		{"a group owner, another group", managerUser, "to=sales@example.com&to=other@example.com", 403},
		{"no role, their own address", nobody, "to=none@example.com", 403},
		{"an auditor, anyone", auditorUser, "to=ana@example.com&to=sales@example.com", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.who, "POST", "/autoreplies/preview?"+tt.query+"&"+at, rfc822(invoice))
			if r.status != tt.want {
				t.Errorf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}
	// Previews change nothing: the only entries are the settings written above.
	for _, a := range e.auditActions("out-of-office:ana@example.com") {
		if !strings.HasPrefix(a, "out-of-office.create") {
			t.Errorf("audit entry %q after previews", a)
		}
	}
}
