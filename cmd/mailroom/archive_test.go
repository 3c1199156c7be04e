package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/api/apitest"
	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/mail"
)

// archiveAPI serves the admin function with an archive table holding recs, through the local
// API Gateway front, and points the commands at it as an auditor.
func archiveAPI(t *testing.T, recs ...archive.Record) {
	t.Helper()
	clients := devstacktest.Clients(t)
	cfg := admin.Config{
		DirectoryTable: devstacktest.Table(t, "DirectoryTable"),
		AuditTable:     devstacktest.Table(t, "AuditTable"),
		ArchiveTable:   devstacktest.Table(t, "ArchiveTable"),
	}
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, cfg.ArchiveTable)
	for _, r := range recs {
		if err := idx.Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	h, err := admin.New(cfg, clients, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
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
	token, err := keys.Issue(apigw.Claims{Subject: "local:auditor", Email: "audit@example.com", Roles: []string{"auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAPIURL, srv.URL)
	t.Setenv(envToken, token)
}

func TestArchiveCommands(t *testing.T) {
	rec := func(id string, day int, subject string, attach bool) archive.Record {
		at := time.Date(2026, 11, day, 9, 30, 0, 0, time.UTC)
		r := archive.Record{
			ID: id, Source: "ses", Key: "archive/2026/11/" + id + ".eml", RawKey: "inbound/" + id,
			ReceivedAt: at, ArchivedAt: at, EnvelopeFrom: "kim@client.example",
			Recipients: []string{"sales@example.com"}, Groups: []string{"sales"}, Labels: []string{"invoices"},
			From:    []mail.Address{{Name: "Kim Tan", Address: "kim@client.example"}},
			To:      []mail.Address{{Address: "sales@example.com"}},
			Subject: subject, Size: 12_800, SHA256: "ab",
		}
		if attach {
			r.Attachments = []mail.Attachment{{Part: "2", Filename: "invoice.pdf", ContentType: "application/pdf", Size: 2048, SHA256: "cd"}}
		}
		return r
	}
	archiveAPI(t,
		rec("c1", 20, "Invoice 41", true),
		rec("c2", 21, "Lunch on Friday", false),
		rec("c3", 22, "Invoice 42, and a note about the long subject that a table cuts short", true),
	)

	out := mustRun(t, "archive", "search", "--group", "sales", "--limit", "2")
	wantLines(t, out, "RECEIVED", "FROM", "SUBJECT", "SIZE", "ID",
		"2026-11-22T09:30:00Z", "kim@client.example", "Invoice 42, and a note", "…", "12.5 KB", "c3", "c2", "more: --cursor")
	if strings.Contains(out, "c1") {
		t.Errorf("first page of 2 holds c1:\n%s", out)
	}
	out = mustRun(t, "archive", "search", "--mailbox", "sales@example.com", "--all", "--limit", "1")
	wantLines(t, out, "c3", "c2", "c1")
	if strings.Contains(out, "more:") {
		t.Errorf("--all printed a cursor:\n%s", out)
	}
	out = mustRun(t, "archive", "search", "--from", "2026-11-20", "--to", "2026-11-21", "--subject", "INVOICE", "--has-attachment")
	wantLines(t, out, "c1")
	if strings.Contains(out, "c2") || strings.Contains(out, "c3") {
		t.Errorf("search by date and subject:\n%s", out)
	}
	wantLines(t, mustRun(t, "archive", "search", "--label", "invoices", "--has-attachment=false"), "c2")
	wantLines(t, mustRun(t, "archive", "search", "--sender", "kim@client.example", "--subject", "nothing like it"), "no messages")

	var page struct {
		Items []struct{ ID string }
		Next  string
	}
	if err := json.Unmarshal([]byte(mustRun(t, "archive", "search", "--sender", "KIM@client.example", "--limit", "1", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != "c3" || page.Next == "" {
		t.Errorf("--json page = %+v", page)
	}
	wantLines(t, mustRun(t, "archive", "search", "--sender", "kim@client.example", "--limit", "1", "--cursor", page.Next), "c2", "more: --cursor")

	out = mustRun(t, "archive", "show", "c1")
	wantLines(t, out, "id:", "c1", "received:", "2026-11-20T09:30:00Z", "from:", "Kim Tan <kim@client.example>",
		"subject:", "Invoice 41", "attachments:", "invoice.pdf (application/pdf, 2.0 KB)", "groups:", "sales",
		"labels:", "invoices", "original:", "archive/2026/11/c1.eml")

	mustFail(t, "(field mailbox)", "archive", "search", "--mailbox", "sales")
	mustFail(t, "(field cursor)", "archive", "search", "--sender", "ana@example.com", "--cursor", page.Next)
	mustFail(t, "404", "archive", "show", "nope")
	mustFail(t, "--from", "archive", "search", "--from", "last week")
	mustFail(t, "none of the others can be", "archive", "search", "--mailbox", "a@example.com", "--group", "sales")
}
