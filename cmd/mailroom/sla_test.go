package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/api/apitest"
	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/sla"
)

// slaAPI is checkedAPI with a state table, whose conversations run on the clock now returns;
// it returns the SLA service, for the test to open and answer conversations as the inbound and
// SES-events functions do.
func slaAPI(t *testing.T, now func() time.Time) *sla.Service {
	t.Helper()
	clients := devstacktest.Clients(t)
	cfg := admin.Config{
		DirectoryTable: devstacktest.Table(t, "DirectoryTable"),
		AuditTable:     devstacktest.Table(t, "AuditTable"),
		StateTable:     devstacktest.Table(t, "StateTable"),
	}
	h, err := admin.New(cfg, clients, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc := &sla.Service{
		Store:    dynamo.NewConversations(clients.DynamoDB, cfg.StateTable),
		Policies: sla.Policies{Settings: dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, "")},
		Now:      now,
	}
	h.WithSLA(svc)
	keys, err := apigw.LoadOrCreateKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	front, err := apigw.New(apigw.Config{Handler: h.Handle, Keys: keys, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.New(t).Middleware(t, front))
	t.Cleanup(srv.Close)
	token, err := keys.Issue(apigw.Claims{Subject: "local:admin", Email: "root@example.com", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAPIURL, srv.URL)
	t.Setenv(envToken, token)
	return svc
}

type silentEscalation struct{}

func (silentEscalation) Escalate(context.Context, sla.Conversation, sla.Policy, string) error {
	return nil
}
func (silentEscalation) Hold(context.Context, sla.Conversation, sla.Policy, time.Time) error {
	return nil
}

const holidaysICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mailroom test//EN\r\n" +
	"BEGIN:VEVENT\r\nUID:christmas@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20251225\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:merdeka-2026@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260831\r\nSUMMARY:Merdeka\r\nEND:VEVENT\r\n" +
	"END:VCALENDAR\r\n"

// TestSLAEndToEnd sets up a calendar and a policy with the commands, follows the conversations
// the SLA service opens under it, pauses and resumes one, and reports on the queues, as CSV too.
func TestSLAEndToEnd(t *testing.T) {
	mon := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	now := mon.Add(2*24*time.Hour + 9*time.Hour)        // Wednesday 09:00
	svc := slaAPI(t, func() time.Time { return now })
	ctx := context.Background()
	dir := t.TempDir()
	file := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	mustRun(t, "domains", "create", "example.com")
	mustRun(t, "mailboxes", "create", "ana@example.com", "--name", "Ana Lim")
	mustRun(t, "groups", "create", "--name", "Sales", "--id", "sales", "--address", "sales@example.com", "--owner", "ana@example.com")

	// A calendar, with holidays from a feed.
	out := mustRun(t, "sla", "calendars", "create", "--file", file("office.json",
		`{"id": "office", "name": "Office", "timeZone": "UTC", "hours": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"], "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]}}`))
	wantLines(t, out, "id:", "office", "mon-fri 09:00-17:00 (UTC)", "holidays:", "none", "version:")
	mustFail(t, "(field hours.mon[0])", "sla", "calendars", "create", "--file", file("bad.json", `{"id": "bad", "timeZone": "UTC", "hours": {"mon": ["17:00-09:00"]}}`))
	out = mustRun(t, "sla", "calendars", "import", "office", file("holidays.ics", holidaysICS), "--from", "2026-01-01", "--to", "2027-12-31")
	wantLines(t, out, "added 3 of the 3 dates in the feed to calendar office", "2026-08-31, 2026-12-25, 2027-12-25")
	wantLines(t, mustRun(t, "sla", "calendars", "import", "office", file("holidays.ics", holidaysICS), "--from", "2026-01-01", "--to", "2027-12-31"), "added 0 of the 3 dates")
	mustFail(t, "(field ics)", "sla", "calendars", "import", "office", file("notes.ics", "not a calendar"))
	wantLines(t, mustRun(t, "sla", "calendars", "list"), "office", "3")

	// A policy on it for the sales group.
	out = mustRun(t, "sla", "policies", "create", "--file", file("policy.json",
		`{"name": "Sales", "calendar": "office", "firstResponseHours": 8, "groups": ["sales"], "escalation": ["ana@example.com"]}`))
	wantLines(t, out, "id:", "sales", "calendar:", "office", "first response:", "8 business hours", "next response:", "as the first",
		"applies to:", "group sales", "escalation:", "ana@example.com")
	mustFail(t, "(field groups[0])", "sla", "policies", "create", "--file", file("ghosts.json", `{"id": "ghosts", "firstResponseHours": 8, "groups": ["ghosts"]}`))
	out = mustRun(t, "sla", "policies", "set", "sales", "--file", file("patch.json", `{"warnPercent": 50}`), "--if-match", "1")
	wantLines(t, out, "warning:", "at 50% of a target")
	mustFail(t, "412 Precondition failed", "sla", "policies", "set", "sales", "--file", file("patch.json", `{"warnPercent": 60}`), "--if-match", "1")
	wantLines(t, mustRun(t, "sla", "policies", "list"), "sales", "8 business hours", "office", "group sales")
	mustFail(t, "409 Conflict", "sla", "calendars", "delete", "office")

	// Two conversations: one answered in two business hours, one past its deadline.
	for _, m := range []sla.Message{
		{MessageID: "q1@client.example", From: "kim@client.example", Subject: "Quote", At: mon.Add(9 * time.Hour)},
		{MessageID: "q2@client.example", From: "lee@client.example", Subject: "Refund", At: mon.Add(10 * time.Hour)},
	} {
		if _, ok, err := svc.Received(ctx, "group:sales", "", m, false); err != nil || !ok {
			t.Fatalf("received %s: %v, %v", m.MessageID, ok, err)
		}
	}
	if _, err := svc.StaffSent(ctx, sla.Message{MessageID: "a1@example.com", InReplyTo: []string{"q1@client.example"},
		From: "ana@example.com", At: mon.Add(11 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if rep, err := svc.Sweep(ctx, silentEscalation{}, 0); err != nil || rep.Breaches != 1 {
		t.Fatalf("sweep = %+v, %v", rep, err)
	}

	var convs struct {
		Items []struct{ ID, Subject, State string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, "sla", "conversations", "--queue", "sales", "--json")), &convs); err != nil {
		t.Fatal(err)
	}
	if len(convs.Items) != 2 || convs.Items[0].Subject != "Quote" || convs.Items[1].State != "waiting" {
		t.Fatalf("conversations --json = %+v", convs)
	}
	late := convs.Items[1].ID
	out = mustRun(t, "sla", "conversations", "--queue", "group:sales", "--from", "2026-11-02", "--to", "2026-11-05")
	wantLines(t, out, "ID", "STATE", "FIRST RESPONSE", convs.Items[0].ID, "answered", "2 business hours, within target", late, "waiting, breached")
	wantLines(t, mustRun(t, "sla", "conversations", "--queue", "sales", "--only", "answered"), convs.Items[0].ID)
	mustFail(t, "waiting, paused or answered", "sla", "conversations", "--queue", "sales", "--only", "closed")
	out = mustRun(t, "sla", "conversation", late)
	wantLines(t, out, "queue:", "group:sales", "customer:", "lee@client.example", "state:", "waiting, breached",
		"due:", "2026-11-03T10:00:00Z", "first response:", "not yet")

	// Pause and resume, each once.
	wantLines(t, mustRun(t, "sla", "pause", late), "paused conversation "+late, "state:", "paused", "clock:", "stopped: 15 business hours of the target used")
	mustFail(t, "409 Conflict", "sla", "pause", late)
	now = now.Add(time.Hour)
	wantLines(t, mustRun(t, "sla", "resume", late), "resumed conversation "+late, "running since 2026-11-04T10:00:00Z")
	wantLines(t, mustRun(t, "audit", "--resource", "conversation:"+late, "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-08T00:00:00Z"),
		"conversation.pause", "conversation.resume")

	// The report, as people read it and as CSV, one row per queue.
	out = mustRun(t, "sla", "report", "--queue", "sales", "--from", "2026-11-02", "--to", "2026-11-05")
	wantLines(t, out, "queue:", "group:sales", "period:", "2026-11-02T00:00:00Z to 2026-11-05T00:00:00Z", "conversations:", "2 opened",
		"within target:", "1 (50% of all opened)", "median 2 business hours", "breached now:", late)
	out = mustRun(t, "sla", "report", "--queue", "sales", "--queue", "ana@example.com", "--from", "2026-11-02", "--to", "2026-11-05", "--csv")
	want := "queue,from,to,conversations,answered,within_target,share_within_target,median_first_response_hours,p90_first_response_hours,current_breaches\n" +
		"group:sales,2026-11-02T00:00:00Z,2026-11-05T00:00:00Z,2,1,1,0.5,2,2,1\n" +
		"mailbox:ana@example.com,2026-11-02T00:00:00Z,2026-11-05T00:00:00Z,0,0,0,0,0,0,0\n"
	if out != want {
		t.Errorf("report --csv =\n%s\nwant\n%s", out, want)
	}
	var reports struct {
		Items []struct{ Queue string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, "sla", "report", "--queue", "sales", "--queue", "ana@example.com", "--json")), &reports); err != nil ||
		len(reports.Items) != 2 || reports.Items[1].Queue != "mailbox:ana@example.com" {
		t.Errorf("report --json for two queues = %+v, %v", reports, err)
	}
	mustFail(t, "choose one", "sla", "report", "--queue", "sales", "--csv", "--json")
	mustFail(t, "(field queue)", "sla", "report", "--queue", "alias:info@example.com")

	// Removing: the policy, then its calendar.
	wantLines(t, mustRun(t, "sla", "policies", "delete", "sales"), "deleted policy sales")
	wantLines(t, mustRun(t, "sla", "calendars", "delete", "office"), "deleted calendar office")
	if out := mustRun(t, "sla", "policies", "list"); !strings.Contains(out, "no SLA policies") {
		t.Errorf("policies list after the delete:\n%s", out)
	}
}
