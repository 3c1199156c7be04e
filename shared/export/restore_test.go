package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/delivery"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/routing"
	"github.com/mailroom/mailroom/shared/sesmail"
)

// TestRestore delivers an archived message to a mailbox again, through the local SES endpoint:
// once per restore id, to the mailbox's forwarding destination, marked as restored; a closed
// mailbox, and one whose mail stays in the archive, are refused.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dirTable := devstacktest.Table(t, "DirectoryTable")
	store := dynamo.NewDirectory(f.clients.DynamoDB, dirTable, devstacktest.Table(t, "AuditTable"))
	dir := &directory.Service{Store: store, Audit: store, Now: time.Now}
	admin := directory.Call{Principal: directory.Principal{Subject: "test", Roles: []string{directory.RoleAdmin}}}
	domain := fmt.Sprintf("restore-%d.example", time.Now().UnixNano())
	dest := "ana.home@" + strings.Replace(domain, "restore-", "ext-", 1)
	if _, err := dir.CreateDomain(ctx, admin, directory.Domain{Name: domain, UnknownRecipients: directory.UnknownBounce}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []directory.Mailbox{
		{Address: "ana@" + domain, DisplayName: "Ana", ForwardTo: []string{dest}},
		{Address: "old@" + domain, Status: directory.StatusClosed},
		{Address: "kept@" + domain},
	} {
		if _, err := dir.CreateMailbox(ctx, admin, m); err != nil {
			t.Fatal(err)
		}
	}
	restorer := &export.Restorer{
		Index: f.index, Objects: f.store, Directory: store,
		Router: &routing.Router{Directory: store, Rules: routing.StoredRules{Store: store}, Closed: autoreply.ClosedNotices{Settings: store}},
		Delivery: &delivery.Service{
			Sender: sesmail.New(f.clients.SES, ""),
			Ledger: dynamo.NewLedger(f.clients.DynamoDB, f.state),
			Links:  f.store, Now: time.Now,
		},
		Now: time.Now,
	}
	rec := f.receive(t, "restore1", message(1, 2000), time.Now().Add(-24*time.Hour), "bob@customer.example", "ana@"+domain)

	got, err := restorer.Restore(ctx, export.RestoreRequest{Message: rec.ID, Mailbox: "Ana@" + domain, RestoreID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Already || len(got.Sent) != 1 || got.Sent[0].SESID == "" || got.Destinations[0] != dest {
		t.Errorf("restore: %+v", got)
	}
	sent := sesMessages(t, dest)
	if len(sent) != 1 {
		t.Fatalf("SES sent %d messages to %s, want 1", len(sent), dest)
	}
	raw := sesRaw(t, sent[0])
	if !strings.Contains(raw, export.RestoredField+": ") || !strings.Contains(raw, "Subject: message 1") ||
		!strings.Contains(raw, "X-Mailroom-Loop: ana@"+domain) {
		t.Errorf("the restored message lacks its marks:\n%.600s", raw)
	}

	again, err := restorer.Restore(ctx, export.RestoreRequest{Message: rec.ID, Mailbox: "ana@" + domain, RestoreID: "r1"})
	if err != nil || !again.Already {
		t.Errorf("the same restore again: %v, %+v", err, again)
	}
	if n := len(sesMessages(t, dest)); n != 1 {
		t.Errorf("SES sent %d messages after the same restore twice, want 1", n)
	}

	tests := []struct {
		name, mailbox, message string
		kind                   fault.Kind
		says                   string
	}{
		{"closed mailbox", "old@" + domain, rec.ID, fault.Conflict, "is closed"},
		{"mailbox read in the archive", "kept@" + domain, rec.ID, fault.Invalid, "no forwarding destination"},
		{"no such mailbox", "nobody@" + domain, rec.ID, fault.NotFound, "no mailbox"},
		{"no such message", "ana@" + domain, "absent", fault.NotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := restorer.Restore(ctx, export.RestoreRequest{Message: tt.message, Mailbox: tt.mailbox})
			if !fault.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v, want %v saying %q", err, tt.kind, tt.says)
			}
		})
	}
	if n := len(sesMessages(t, dest)); n != 1 {
		t.Errorf("SES sent %d messages, want 1", n)
	}
}

// sesMessages lists the ids of what the local SES endpoint sent to addr.
func sesMessages(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get(devstacktest.Endpoints(t).SES + "/_mailroom/messages?to=" + url.QueryEscape(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []struct{ MessageId string } }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(list.Messages))
	for i, m := range list.Messages {
		ids[i] = m.MessageId
	}
	return ids
}

func sesRaw(t *testing.T, id string) string {
	t.Helper()
	resp, err := http.Get(devstacktest.Endpoints(t).SES + "/_mailroom/messages/" + url.PathEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Raw []byte }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return string(m.Raw)
}
