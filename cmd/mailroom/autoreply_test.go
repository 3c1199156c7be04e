package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAutoreplyEndToEnd sets, reads, previews and clears automatic replies with the commands,
// against the real handler (with its state table, so previews consult the ledger) and the local
// DynamoDB.
func TestAutoreplyEndToEnd(t *testing.T) {
	destinationsAPI(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		t.Helper()
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	mustRun(t, "domains", "create", "example.com")
	mustRun(t, "mailboxes", "create", "ana@example.com", "--name", "Ana Lim", "--time-zone", "Asia/Kuala_Lumpur")
	mustRun(t, "mailboxes", "create", "old@example.com", "--name", "Old Desk")
	mustRun(t, "groups", "create", "--name", "Sales", "--id", "sales", "--address", "sales@example.com",
		"--owner", "ana@example.com", "--posting", "anyone")
	mustRun(t, "groups", "add-member", "sales", "ana@example.com")

	// Out-of-office: created by set, switched on; then one field at a time.
	mustFail(t, "404", "autoreply", "get", "out-of-office", "ana@example.com")
	out := mustRun(t, "autoreply", "set", "out-of-office", "ana@example.com", "--start", "2026-11-20", "--end", "2026-12-01T09:00")
	wantLines(t, out, "mailbox:", "ana@example.com", "state:", "on",
		"from 2026-11-20 to 2026-12-01T09:00 (the mailbox's time zone)", "audience:", "everyone",
		"the shipped texts", "after 7 days (the default)", "version:")
	out = mustRun(t, "autoreply", "set", "out-of-office", "ana@example.com", "--time-zone", "Asia/Ho_Chi_Minh", "--audience", "internal",
		"--repeat-days", "3", "--text-language", "ms", "--subject", "Cuti: {{.OriginalSubject}}", "--body", "Saya bercuti hingga {{date .Until}}.")
	wantLines(t, out, "(Asia/Ho_Chi_Minh)", "senders of the organisation only", "ms (for everyone)", "after 3 days")
	if !regexp.MustCompile(`version:\s+2\n`).MatchString(out) {
		t.Errorf("the change did not make version 2:\n%s", out)
	}
	out = mustRun(t, "autoreply", "set", "out-of-office", "ana@example.com", "--external-only", "--subject", "Away", "--body", "Back on {{date .Until}}.")
	wantLines(t, out, "internal senders: ms; external senders: en")
	mustFail(t, "there is no vi text yet", "autoreply", "set", "out-of-office", "ana@example.com", "--text-language", "vi", "--subject", "Vắng mặt")
	mustFail(t, "(field end)", "autoreply", "set", "out-of-office", "ana@example.com", "--end", "2026-11-01")
	mustFail(t, "(field internal[0].body)", "autoreply", "set", "out-of-office", "ana@example.com", "--text-language", "ms", "--body", "{{.Nope}}")
	mustFail(t, "nothing to change", "autoreply", "set", "out-of-office", "ana@example.com")
	mustFail(t, "--file sets the whole", "autoreply", "set", "out-of-office", "ana@example.com", "--file", file("x.json", "{}"), "--on")
	mustFail(t, "412 Precondition failed", "autoreply", "set", "out-of-office", "ana@example.com", "--off", "--if-match", "1")
	wantLines(t, mustRun(t, "autoreply", "set", "out-of-office", "ana@example.com", "--off"), "state:", "off")
	// A whole setting from a file replaces the rest: back to everyone, in the mailbox's zone.
	out = mustRun(t, "autoreply", "set", "out-of-office", "ana@example.com", "--file", file("ooo.json",
		`{"enabled": true, "start": "2026-11-20", "end": "2026-12-01T09:00"}`))
	wantLines(t, out, "state:", "on", "(the mailbox's time zone)", "everyone", "the shipped texts")
	var got struct {
		Version  int64
		Audience string
	}
	if err := json.Unmarshal([]byte(mustRun(t, "autoreply", "get", "out-of-office", "Ana@Example.com", "--json")), &got); err != nil || got.Version != 5 || got.Audience != "everyone" {
		t.Errorf("get --json = %+v, %v; want version 5, audience everyone", got, err)
	}

	// An acknowledgement with business hours, and a closed notice.
	cal := file("cal.json", `{"timeZone": "Asia/Kuala_Lumpur", "hours": {"mon": ["09:00-12:30", "13:30-18:00"], "tue": ["09:00-12:30", "13:30-18:00"], "wed": ["09:00-13:00"]}, "holidays": ["2026-12-25"]}`)
	out = mustRun(t, "autoreply", "set", "acknowledgement", "sales", "--promise-hours", "8", "--calendar", cal, "--language", "ms")
	wantLines(t, out, "group:", "sales", "a reply within 8 business hours",
		"mon-tue 09:00-12:30, 13:30-18:00; wed 09:00-13:00 (Asia/Kuala_Lumpur)", "holidays:", "2026-12-25", "language:", "ms")
	// A new calendar replaces the old one whole.
	out = mustRun(t, "autoreply", "set", "acknowledgement", "sales", "--calendar", file("cal2.json", `{"timeZone": "UTC", "hours": {"fri": ["10:00-16:00"]}}`))
	wantLines(t, out, "fri 10:00-16:00 (UTC)", "a reply within 8 business hours")
	if strings.Contains(out, "mon") || strings.Contains(out, "holidays") {
		t.Errorf("the old calendar is still there:\n%s", out)
	}
	mustFail(t, "(field calendar.hours.fri[0])", "autoreply", "set", "acknowledgement", "sales", "--calendar", file("bad.json", `{"timeZone": "UTC", "hours": {"fri": ["16:00-10:00"]}}`))
	out = mustRun(t, "autoreply", "set", "closed-notice", "old@example.com", "--successor", "ana@example.com", "--forward")
	wantLines(t, out, "successor:", "ana@example.com", "yes: the mailbox's mail goes on to ana@example.com")
	mustFail(t, "(field forward)", "autoreply", "set", "closed-notice", "old@example.com", "--successor", "")
	wantLines(t, mustRun(t, "autoreply", "get", "closed-notice", "old@example.com"), "state:", "on")

	// Preview: Ana's reply, rendered; the rule that stops one; a group's acknowledgement.
	invoice := file("invoice.eml", "From: Kim Tan <kim@client.example>\r\nTo: ana@example.com\r\nSubject: Invoice 42\r\n"+
		"Message-ID: <inv42@client.example>\r\n\r\nHello.\r\n")
	out = mustRun(t, "autoreply", "preview", invoice, "--to", "ana@example.com", "--at", "2026-11-23T09:00:00Z")
	wantLines(t, out, "From: Ana Lim <ana@example.com>\nTo: kim@client.example\nSubject: Automatic reply: Invoice 42\nContent-Language: en\n\nHello Kim Tan,",
		"will be back on Tuesday, 1 December 2026")
	auto := file("auto.eml", "From: Kim Tan <kim@client.example>\r\nTo: ana@example.com\r\nSubject: Report\r\nAuto-Submitted: auto-generated\r\n\r\nHello.\r\n")
	out = mustRun(t, "autoreply", "preview", auto, "--to", "ana@example.com", "--at", "2026-11-23T09:00:00Z", "--no-limits")
	wantLines(t, out, "no reply from mailbox:ana@example.com: auto-submitted — Auto-Submitted: auto-generated (RFC 3834 §2, §5; RFC 5230 §4.6)")
	if strings.Count(out, "RFC 3834 §2, §5") != 1 {
		t.Errorf("the source is shown twice:\n%s", out)
	}
	out = mustRun(t, "autoreply", "preview", invoice, "--to", "sales@example.com", "--to", "ana@example.com", "--at", "2026-11-23T09:00:00Z")
	wantLines(t, out, "From: Sales <sales@example.com>", "Content-Language: ms", "From: Ana Lim <ana@example.com>")
	out = mustRun(t, "autoreply", "preview", invoice, "--to", "ana@example.com", "--at", "2026-12-24T09:00:00Z")
	wantLines(t, out, "no automatic reply: nobody answers this recipient")
	out = mustRun(t, "autoreply", "preview", invoice, "--to", "ana@example.com", "--from", "", "--at", "2026-11-23T09:00:00Z")
	wantLines(t, out, "no reply from mailbox:ana@example.com: null-sender")
	mustFail(t, "--to is required", "autoreply", "preview", invoice)
	var p struct{ Replies []struct{ Kind string } }
	if err := json.Unmarshal([]byte(mustRun(t, "autoreply", "preview", invoice, "--to", "ana@example.com", "--at", "2026-11-23T09:00:00Z", "--json")), &p); err != nil ||
		len(p.Replies) != 1 || p.Replies[0].Kind != "out-of-office" {
		t.Errorf("preview --json = %+v, %v", p, err)
	}

	// The shipped texts and the rules.
	out = mustRun(t, "autoreply", "templates", "closed-notice", "--language", "vi")
	wantLines(t, out, "== closed-mailbox, vi", "Subject: ", "languages: en, zh-Hans, zh-Hant, ms, vi", "SenderName", "datetime")
	if strings.Contains(out, "== out-of-office") {
		t.Errorf("templates closed-notice shows other kinds:\n%s", out)
	}
	mustFail(t, "(field language)", "autoreply", "templates", "--language", "fr")
	wantLines(t, mustRun(t, "autoreply", "rules"), "1. null-sender", "auto-submitted", "list-headers", "source: RFC 3834")

	// Every change is audited; clear removes each.
	wantLines(t, mustRun(t, "audit", "--resource", "out-of-office:ana@example.com"), "out-of-office.create", "out-of-office.update")
	wantLines(t, mustRun(t, "autoreply", "clear", "out-of-office", "ana@example.com"), "cleared the out-of-office reply of ana@example.com")
	mustFail(t, "404", "autoreply", "get", "out-of-office", "ana@example.com")
	mustFail(t, "412", "autoreply", "clear", "acknowledgement", "sales", "--if-match", "1")
	wantLines(t, mustRun(t, "autoreply", "clear", "acknowledgement", "sales"), "cleared the acknowledgement of sales")
	wantLines(t, mustRun(t, "autoreply", "clear", "closed-notice", "old@example.com"), "cleared the closed-mailbox notice of old@example.com")
	mustFail(t, "not a kind of automatic reply", "autoreply", "clear", "vacation", "ana@example.com")
	wantLines(t, mustRun(t, "autoreply", "preview", invoice, "--to", "ana@example.com", "--at", "2026-11-23T09:00:00Z"), "no automatic reply")
}
