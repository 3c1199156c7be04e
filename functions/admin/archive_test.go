package admin_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/mail"
)

// archivedRecord is a message to sales@ and ana@ as the inbound function would have archived it.
func archivedRecord(id string, at time.Time) archive.Record {
	return archive.Record{
		ID: id, Source: "ses", Key: "archive/" + at.Format("2006/01/02/") + id + ".eml", RawKey: "inbound/" + id,
		ReceivedAt: at, ArchivedAt: at.Add(time.Second), EnvelopeFrom: "kim@client.example",
		Recipients: []string{"sales@example.com", "ana@example.com"},
		MessageID:  id + "@client.example",
		From:       []mail.Address{{Name: "Kim Tan", Address: "kim@client.example"}},
		To:         []mail.Address{{Address: "sales@example.com"}},
		Subject:    "Invoice for " + id, Date: at.In(time.FixedZone("MYT", 8*3600)),
		Size: 2048, SHA256: "ab12",
		Attachments: []mail.Attachment{{Part: "2", Filename: "invoice.pdf", ContentType: "application/pdf", Size: 99, SHA256: "cd34"}},
		Verdicts:    archive.Verdicts{Spam: "PASS", Virus: "PASS", SPF: "PASS", DKIM: "PASS", DMARC: "PASS"},
		Groups:      []string{"sales"}, Labels: []string{"invoices"},
	}
}

// archived writes records to the handler's archive table as the inbound function does.
func (e *env) archived(recs ...archive.Record) {
	e.t.Helper()
	idx := dynamo.NewArchiveIndex(e.clients.DynamoDB, e.cfg.ArchiveTable)
	for _, r := range recs {
		if err := idx.Put(context.Background(), r); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestArchiveSearchAPI(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var recs []archive.Record
	for i, id := range []string{"a1", "a2", "a3", "a4"} {
		r := archivedRecord(id, day.AddDate(0, 0, i))
		if id == "a2" {
			r.Recipients, r.Groups, r.Labels, r.Attachments = []string{"ana@example.com"}, nil, nil, nil
			r.From, r.Subject = []mail.Address{{Address: "bo@partner.example"}}, "Lunch on Friday"
		}
		recs = append(recs, r)
	}
	e.archived(recs...)

	type page struct {
		Items []archive.Summary `json:"items"`
		Next  string            `json:"next"`
	}
	search := func(query string) ([]string, string) {
		t.Helper()
		var p page
		if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/archive/search?"+query, nil).body, &p); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		return ids, p.Next
	}
	for _, tt := range []struct {
		name, query string
		want        []string
	}{
		{"a mailbox", "mailbox=Ana@Example.com&from=2026-11-01", []string{"a4", "a3", "a2", "a1"}},
		{"a recipient and a sender", "recipient=ana@example.com&sender=bo@partner.example&from=2026-11-01", []string{"a2"}},
		{"a group, with attachments", "group=sales&hasAttachment=true&from=2026-11-01", []string{"a4", "a3", "a1"}},
		{"a label, subject words", "label=Invoices&subject=" + url.QueryEscape("INVOICE a3"), []string{"a3"}},
		{"days, a date as to is its whole day", "from=2026-11-21&to=2026-11-22", []string{"a3", "a2"}},
		{"days, RFC 3339 ends included", "from=2026-11-21T09:00:00Z&to=2026-11-22T09:00:00Z", []string{"a3", "a2"}},
		{"without attachments", "from=2026-11-01&to=2026-11-30&hasAttachment=false", []string{"a2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, next := search(tt.query); !slices.Equal(got, tt.want) || next != "" {
				t.Errorf("ids = %v (next %q), want %v on one page", got, next, tt.want)
			}
		})
	}

	// Paging: a cursor goes on; another query's cursor, or a damaged one, is refused.
	var all []string
	q := "mailbox=sales@example.com&from=2026-11-01&limit=2"
	cursor, pages := "", 0
	for ; pages < 5; pages++ {
		ids, next := search(q + cursor)
		all = append(all, ids...)
		if next == "" {
			break
		}
		if pages == 0 {
			for _, bad := range []string{
				"mailbox=ana@example.com&from=2026-11-01&cursor=" + next,
				"mailbox=sales@example.com&from=2026-11-02&cursor=" + next,
				q + "&cursor=" + next[:len(next)-2],
				q + "&cursor=eyJxIjoiMCJ9",
			} {
				r := e.do(auditorUser, "GET", "/archive/search?"+bad, nil)
				if r.status != 400 || r.json(t)["field"] != "cursor" {
					t.Errorf("%s: status %d %s, want 400 naming cursor", bad, r.status, r.body)
				}
			}
		}
		cursor = "&cursor=" + next
	}
	if want := []string{"a4", "a3", "a1"}; !slices.Equal(all, want) || pages != 1 {
		t.Errorf("pages of 2: %v in %d pages, want %v in 2", all, pages+1, want)
	}

	for _, tt := range []struct{ name, path, field string }{
		{"a misspelt criterion", "/archive/search?mailbx=ana@example.com", "mailbx"},
		{"a group and a mailbox", "/archive/search?group=sales&mailbox=ana@example.com", "group"},
		{"a mailbox that is no address", "/archive/search?mailbox=ana", "mailbox"},
		{"a time that is neither", "/archive/search?from=yesterday", "from"},
		{"a range backwards", "/archive/search?from=2026-11-22&to=2026-11-21", "from"},
		{"a year and a day by date alone", "/archive/search?from=2025-01-01&to=2026-11-22", "from"},
		{"hasAttachment not a boolean", "/archive/search?hasAttachment=maybe", "hasAttachment"},
		{"limit of zero", "/archive/search?limit=0", "limit"},
		{"an id that is none", "/archive/messages/-a1", "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(adminUser, "GET", tt.path, nil)
			if r.status != 400 || r.json(t)["field"] != tt.field {
				t.Errorf("status %d %s, want 400 naming %s", r.status, r.body, tt.field)
			}
		})
	}
	e.must(adminUser, 404, "GET", "/archive/messages/nope", nil)
	if r := e.do(employeeAna, "GET", "/archive/search?mailbox=ana@example.com", nil); r.status != 403 {
		t.Errorf("an employee's search of their own mailbox: status %d, want 403", r.status)
	}
	if r := e.do(managerUser, "GET", "/archive/messages/a1", nil); r.status != 403 {
		t.Errorf("a group manager's read: status %d, want 403", r.status)
	}

	// A message's record, as archived.
	var rec archive.Record
	if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/archive/messages/a3", nil).body, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ID != "a3" || !slices.Equal(rec.Groups, []string{"sales"}) || rec.Subject != "Invoice for a3" || len(rec.Attachments) != 1 {
		t.Errorf("record = %+v", rec)
	}
}

// TestArchiveReadsAreAudited: every search and every read is in the audit log, by who made it,
// with the query; refused and invalid ones are not.
func TestArchiveReadsAreAudited(t *testing.T) {
	e := newEnv(t)
	e.archived(archivedRecord("r1", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)))
	e.must(auditorUser, 200, "GET", "/archive/search?mailbox=ANA@example.com&subject=invoice&hasAttachment=true&from=2026-11-01", nil)
	e.must(adminUser, 200, "GET", "/archive/search?label=invoices&limit=5", nil)
	e.must(adminUser, 200, "GET", "/archive/search?from=2026-11-19&to=2026-11-20", nil)
	e.must(auditorUser, 200, "GET", "/archive/messages/r1", nil)
	e.must(employeeAna, 403, "GET", "/archive/search?mailbox=ana@example.com", nil)
	e.must(auditorUser, 400, "GET", "/archive/search?mailbox=ana", nil)
	e.must(auditorUser, 404, "GET", "/archive/messages/gone", nil)

	type entry struct {
		Action   string                     `json:"action"`
		Resource string                     `json:"resource"`
		Actor    struct{ Subject string }   `json:"actor"`
		After    map[string]json.RawMessage `json:"after"`
	}
	entries := func(query string) []entry {
		t.Helper()
		var p struct{ Items []entry }
		if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/audit?"+query, nil).body, &p); err != nil {
			t.Fatal(err)
		}
		return p.Items
	}
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	got := entries("resource=archive:mailbox:ana@example.com")
	if len(got) != 1 || got[0].Action != "archive.search" || got[0].Actor.Subject != auditorUser.Subject ||
		str(got[0].After["mailbox"]) != "ana@example.com" || str(got[0].After["subject"]) != "invoice" ||
		string(got[0].After["hasAttachment"]) != "true" || str(got[0].After["from"]) != "2026-11-01T00:00:00Z" {
		t.Errorf("entries for the mailbox search = %+v", got)
	}
	if got := entries("resource=archive:label:invoices"); len(got) != 1 || got[0].Actor.Subject != adminUser.Subject || string(got[0].After["limit"]) != "5" {
		t.Errorf("entries for the label search = %+v", got)
	}
	if got := entries("resource=archive:all"); len(got) != 1 || str(got[0].After["to"]) != "2026-11-20T23:59:59.999999999Z" {
		t.Errorf("entries for the search by date = %+v", got)
	}
	if got := entries("resource=message:r1"); len(got) != 1 || got[0].Action != "message.read" || str(got[0].After["id"]) != "r1" {
		t.Errorf("entries for the read = %+v", got)
	}
	if got := entries("actor=" + employeeAna.Subject); len(got) != 0 {
		t.Errorf("a refused search was audited: %+v", got)
	}
	if got := entries("resource=message:gone"); len(got) != 0 {
		t.Errorf("a read of nothing was audited: %+v", got)
	}
	if got := entries("actor=" + auditorUser.Subject); len(got) != 2 {
		t.Errorf("the auditor's entries = %+v, want the search and the read only", got)
	}
}
