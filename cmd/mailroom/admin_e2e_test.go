package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
)

// localAPI serves the admin function on the local DynamoDB through the local API Gateway front,
// as `mailroom dev` does, and points the commands at it with an admin token through the
// environment.
func localAPI(t *testing.T) {
	t.Helper()
	h, err := admin.New(admin.Config{
		DirectoryTable: devstacktest.Table(t, "DirectoryTable"),
		AuditTable:     devstacktest.Table(t, "AuditTable"),
	}, devstacktest.Clients(t), slog.New(slog.DiscardHandler))
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
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	token, err := keys.Issue(apigw.Claims{Subject: "local:admin", Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAPIURL, srv.URL)
	t.Setenv(envToken, token)
}

// mustRun runs a command that should succeed and returns its output.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("mailroom %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mustFail runs a command that should fail with an error containing want.
func mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	out, err := run(t, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("mailroom %s: error = %v, want one containing %q\n%s", strings.Join(args, " "), err, want, out)
	}
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestAdminCommandsEndToEnd drives the commands through a day of directory work against the real
// handler, the real front and the local DynamoDB.
func TestAdminCommandsEndToEnd(t *testing.T) {
	localAPI(t)

	out := mustRun(t, "me")
	wantLines(t, out, "local:admin", "admin")
	mustFail(t, "401 Unauthorized: the token is not a valid JWT", "me", "--token", "not.a.token")

	// A create repeated with its Idempotency-Key is done once: the second gets the first's answer.
	mustRun(t, "domains", "create", "example.com", "--idempotency-key", "add-example.com")
	wantLines(t, mustRun(t, "domains", "create", "example.com", "--idempotency-key", "add-example.com"), "already done", "version:")
	mustFail(t, "409 Conflict", "domains", "create", "example.com")
	wantLines(t, mustRun(t, "domains", "list"), "example.com", "bounce")
	mustFail(t, `400 Invalid request`, "mailboxes", "create", "ana@")

	mustRun(t, "mailboxes", "create", "boss@example.com", "--name", "The Boss")
	out = mustRun(t, "mailboxes", "create", "ana@example.com", "--name", "Ana Lim", "--forward", "ana.lim@corp.example",
		"--manager", "boss@example.com", "--locale", "ms-MY", "--time-zone", "Asia/Kuala_Lumpur")
	wantLines(t, out, "ana@example.com", "Ana Lim", "ana.lim@corp.example", "Asia/Kuala_Lumpur", "version:")
	mustRun(t, "mailboxes", "create", "bob@example.com")

	// A group with a nested group.
	mustRun(t, "groups", "create", "--name", "Sales APAC", "--id", "sales-apac", "--type", "region", "--owner", "boss@example.com")
	out = mustRun(t, "groups", "create", "--name", "Sales", "--type", "department", "--address", "sales@example.com",
		"--owner", "boss@example.com", "--posting", "organisation")
	wantLines(t, out, "id:", "sales")
	wantLines(t, mustRun(t, "groups", "add-member", "sales", "ana@example.com"), "added mailbox:ana@example.com to sales")
	wantLines(t, mustRun(t, "groups", "add-member", "sales", "ana@example.com"), "already a member")
	wantLines(t, mustRun(t, "groups", "add-member", "sales", "group:sales-apac"), "added group:sales-apac to sales")
	mustRun(t, "groups", "add-member", "sales-apac", "partner@other.example", "--external")
	mustRun(t, "groups", "add-member", "sales-apac", "mailbox:bob@example.com")
	_, err := run(t, "groups", "add-member", "sales-apac", "group:sales")
	if err == nil || !strings.HasPrefix(err.Error(), "409 Conflict") || !strings.Contains(err.Error(), "sales-apac → sales → sales-apac") {
		t.Errorf("a cycle: error = %v, want a 409 showing the cycle", err)
	}
	wantLines(t, mustRun(t, "groups", "members", "sales"), "mailbox", "ana@example.com", "group", "sales-apac")

	mustRun(t, "mailboxes", "update", "bob@example.com", "--status", "closed")
	out = mustRun(t, "groups", "expand", "sales")
	wantLines(t, out, "ana.lim@corp.example\npartner@other.example\n", "sales, sales-apac", "skipped bob@example.com (closed)")
	var exp struct{ Addresses []string }
	if err := json.Unmarshal([]byte(mustRun(t, "groups", "expand", "sales", "--json")), &exp); err != nil || len(exp.Addresses) != 2 {
		t.Errorf("expand --json: %v %v", exp.Addresses, err)
	}

	mustRun(t, "aliases", "create", "info@example.com", "--target", "sales@example.com")
	wantLines(t, mustRun(t, "aliases", "get", "info@example.com"), "target kind:", "group")

	// Enough mailboxes for several pages.
	for i := range 5 {
		mustRun(t, "mailboxes", "create", fmt.Sprintf("m%d@example.com", i))
	}
	first := mustRun(t, "mailboxes", "list", "--limit", "3")
	m := regexp.MustCompile(`(?m)^more: --cursor (\S+)`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("the first page does not say how to get the next:\n%s", first)
	}
	second := mustRun(t, "mailboxes", "list", "--limit", "3", "--cursor", strings.Trim(m[1], "'"))
	// A header, three mailboxes and the line about the next page.
	for _, page := range []string{first, second} {
		if lines := strings.Count(page, "\n"); lines != 5 {
			t.Errorf("a page of 3 has %d lines:\n%s", lines, page)
		}
	}
	if strings.Contains(second, "ana@example.com") {
		t.Errorf("the second page repeats the first:\n%s", second)
	}
	out = mustRun(t, "mailboxes", "list", "--limit", "3", "--all")
	for _, a := range []string{"ana@", "boss@", "bob@", "m0@", "m1@", "m2@", "m3@", "m4@"} {
		wantLines(t, out, a+"example.com")
	}
	var all struct{ Items []mailbox }
	if err := json.Unmarshal([]byte(mustRun(t, "mailboxes", "list", "--limit", "3", "--all", "--json")), &all); err != nil || len(all.Items) != 8 {
		t.Errorf("list --all --json: %d mailboxes, %v", len(all.Items), err)
	}

	// Updates with If-Match: the current version goes through, a stale one is refused.
	var g group
	json.Unmarshal([]byte(mustRun(t, "groups", "get", "sales", "--json")), &g)
	stale := fmt.Sprint(g.Version)
	out = mustRun(t, "groups", "update", "sales", "--description", "Sales team, APAC and EU", "--if-match", stale)
	wantLines(t, out, "Sales team, APAC and EU")
	if !regexp.MustCompile(fmt.Sprintf(`version:\s+%d\n`, g.Version+1)).MatchString(out) {
		t.Errorf("the update did not make version %d:\n%s", g.Version+1, out)
	}
	mustFail(t, "412 Precondition failed", "groups", "update", "sales", "--name", "Sales & Marketing", "--if-match", stale)
	if out := mustRun(t, "groups", "get", "sales"); !regexp.MustCompile(`name:\s+Sales\n`).MatchString(out) {
		t.Errorf("a stale update changed the group:\n%s", out)
	}

	// Export, change, dry run, import.
	dir := t.TempDir()
	export := filepath.Join(dir, "directory.json")
	mustRun(t, "directory", "export", "-o", export)
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("export is not a directory document: %v", err)
	}
	if len(doc["mailboxes"]) != 8 || len(doc["groups"]) != 2 {
		t.Fatalf("export has %d mailboxes and %d groups", len(doc["mailboxes"]), len(doc["groups"]))
	}
	for _, mb := range doc["mailboxes"] {
		if mb["address"] == "m0@example.com" {
			mb["displayName"] = "Em Zero"
		}
	}
	doc["mailboxes"] = append(doc["mailboxes"], map[string]any{"address": "new@example.com", "displayName": "New Hire"})
	b, _ = json.Marshal(doc)
	changed := filepath.Join(dir, "changed.json")
	os.WriteFile(changed, b, 0o600)

	out = mustRun(t, "directory", "import", changed, "--dry-run")
	wantLines(t, out, "new@example.com", "would be created", "m0@example.com", "would be updated", "dry run, nothing changed")
	mustFail(t, "404", "mailboxes", "get", "new@example.com")
	out = mustRun(t, "directory", "import", changed)
	wantLines(t, out, "1 created, 1 updated")
	wantLines(t, mustRun(t, "mailboxes", "get", "m0@example.com"), "Em Zero")
	wantLines(t, mustRun(t, "directory", "import", changed), "0 created, 0 updated")

	csvPath := filepath.Join(dir, "mailroom-members.csv")
	mustRun(t, "directory", "export", "--format", "csv", "--kind", "members", "-o", csvPath)
	wantLines(t, mustRun(t, "directory", "import", csvPath, "--dry-run"), "dry run, nothing changed: would be 0 created, 0 updated")

	// The audit log has every change, by whom.
	out = mustRun(t, "audit", "--from", "1h", "--all")
	wantLines(t, out, "local:admin", "domain.create", "mailbox.create", "group.add-member", "group:sales", "mailbox:new@example.com")
	out = mustRun(t, "audit", "--resource", "group:sales-apac")
	if strings.Contains(out, "group:sales\n") || !strings.Contains(out, "group:sales-apac") {
		t.Errorf("audit --resource group:sales-apac:\n%s", out)
	}

	// The review: Bob is closed but still in sales-apac; an expired project group without owner
	// or members.
	mustRun(t, "groups", "create", "--name", "Launch", "--type", "project", "--expires", "2020-01-31")
	out = mustRun(t, "groups", "review")
	wantLines(t, out, "inactive member", "bob@example.com (closed)", "expired", "launch", "empty", "no active owner")

	// Removing and deleting.
	wantLines(t, mustRun(t, "groups", "remove-member", "sales", "group:sales-apac"), "removed group:sales-apac from sales")
	mustFail(t, "409 Conflict", "domains", "delete", "example.com")
	wantLines(t, mustRun(t, "aliases", "delete", "info@example.com"), "deleted alias info@example.com")
	mustFail(t, "404", "aliases", "get", "info@example.com")
}
