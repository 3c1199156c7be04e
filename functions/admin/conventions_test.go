package admin_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestInvalidInput sends invalid requests of every kind: each gets a problem document naming the
// field at fault, and the directory and its audit log are unchanged afterwards.
func TestInvalidInput(t *testing.T) {
	e := newEnv(t)
	e.seed()
	before := e.must(adminUser, 200, "GET", "/directory/export", nil).body
	auditBefore := len(e.must(adminUser, 200, "GET", "/audit?limit=1000", nil).json(t)["items"].([]any))

	tests := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		field              string
	}{
		{"address without @", "POST", "/mailboxes", `{"address":"carol.example.com"}`, nil, 400, "address"},
		{"address with a double dot", "POST", "/mailboxes", `{"address":"carol..x@example.com"}`, nil, 400, "address"},
		{"non-ASCII local part", "POST", "/mailboxes", `{"address":"chị@example.com"}`, nil, 400, "address"},
		{"address on a domain Mailroom does not serve", "POST", "/mailboxes", `{"address":"carol@elsewhere.example"}`, nil, 400, "address"},
		{"address taken by a group", "POST", "/mailboxes", `{"address":"sales@example.com"}`, nil, 409, ""},
		{"header injection in a display name", "POST", "/mailboxes", `{"address":"carol@example.com","displayName":"Carol\r\nBcc: all@example.com"}`, nil, 400, "displayName"},
		{"unknown time zone", "POST", "/mailboxes", `{"address":"carol@example.com","timeZone":"Mars/Olympus_Mons"}`, nil, 400, "timeZone"},
		{"bad locale", "POST", "/mailboxes", `{"address":"carol@example.com","locale":"not a language"}`, nil, 400, "locale"},
		{"unknown status", "POST", "/mailboxes", `{"address":"carol@example.com","status":"retired"}`, nil, 400, "status"},
		{"forwarding to itself", "POST", "/mailboxes", `{"address":"carol@example.com","forwardTo":["carol@example.com"]}`, nil, 400, "forwardTo.0"},
		{"forwardTo not a list", "POST", "/mailboxes", `{"address":"carol@example.com","forwardTo":"x@y.example"}`, nil, 400, "forwardTo"},
		{"manager who is not a mailbox", "POST", "/mailboxes", `{"address":"carol@example.com","manager":"ghost@example.com"}`, nil, 400, "manager"},
		{"unknown field", "POST", "/mailboxes", `{"address":"carol@example.com","mobile":"+60 12"}`, nil, 400, "mobile"},
		{"malformed JSON", "POST", "/mailboxes", `{"address":`, nil, 400, "body"},
		{"empty body", "POST", "/mailboxes", ``, nil, 400, "body"},
		{"two JSON objects", "POST", "/mailboxes", `{"address":"carol@example.com"}{}`, nil, 400, "body"},
		{"text/plain body", "POST", "/mailboxes", `address=carol@example.com`, []string{"Content-Type", "text/plain"}, 415, "Content-Type"},
		{"domain name with a space", "POST", "/domains", `{"name":"bad domain.example"}`, nil, 400, "name"},
		{"single-label domain", "POST", "/domains", `{"name":"localhost"}`, nil, 400, "name"},
		{"catch-all policy without an address", "POST", "/domains", `{"name":"c.example","unknownRecipients":"catch-all"}`, nil, 400, "catchAll"},
		{"unknown posting policy", "POST", "/groups", `{"name":"G","posting":{"policy":"everyone"}}`, nil, 400, "posting.policy"},
		{"posting policy as a number", "POST", "/groups", `{"name":"G","posting":{"policy":3}}`, nil, 400, "posting.policy"},
		{"allow-list without entries", "POST", "/groups", `{"name":"G","posting":{"policy":"allow-list"}}`, nil, 400, "posting.allow"},
		{"expiry that is not a date", "POST", "/groups", `{"name":"G","expires":"next spring"}`, nil, 400, "expires"},
		{"group id with capitals", "POST", "/groups", `{"id":"Sales2","name":"G"}`, nil, 400, "id"},
		{"unknown group type", "POST", "/groups", `{"name":"G","type":"club"}`, nil, 400, "type"},
		{"owner who is not a mailbox", "POST", "/groups", `{"name":"G","owners":["ghost@example.com"]}`, nil, 400, "owners.0"},
		{"member of an unknown kind", "POST", "/groups/sales/members", `{"kind":"robot","address":"r@example.com"}`, nil, 400, "kind"},
		{"external member on our domain", "POST", "/groups/sales/members", `{"kind":"external","address":"boss@example.com"}`, nil, 400, "address"},
		{"member mailbox that does not exist", "POST", "/groups/sales/members", `{"kind":"mailbox","address":"ghost@example.com"}`, nil, 400, "address"},
		{"member group that does not exist", "POST", "/groups/sales/members", `{"kind":"group","group":"ghosts"}`, nil, 400, "group"},
		{"alias to an unknown address", "POST", "/aliases", `{"address":"hi@example.com","target":"ghost@example.com"}`, nil, 400, "target"},
		{"alias to an alias", "POST", "/aliases", `{"address":"hi@example.com","target":"info@example.com"}`, nil, 400, "target"},
		{"renaming a mailbox", "PATCH", "/mailboxes/ana@example.com", `{"address":"anna@example.com"}`, nil, 400, "address"},
		{"patch that is not an object", "PATCH", "/mailboxes/ana@example.com", `["displayName"]`, nil, 400, "body"},
		{"malformed If-Match", "PATCH", "/mailboxes/ana@example.com", `{"displayName":"A"}`, []string{"If-Match", "v1"}, 400, "If-Match"},
		{"member reference without a kind", "DELETE", "/groups/sales/members/ana@example.com", nil, nil, 400, "member"},
		{"limit of zero", "GET", "/mailboxes?limit=0", nil, nil, 400, "limit"},
		{"limit over 1000", "GET", "/mailboxes?limit=5000", nil, nil, 400, "limit"},
		{"forged cursor", "GET", "/mailboxes?cursor=bm90LWEtY3Vyc29y", nil, nil, 400, "cursor"},
		{"audit time that is not RFC 3339", "GET", "/audit?from=yesterday", nil, nil, 400, "from"},
		{"audit range backwards", "GET", "/audit?from=2026-11-20T00:00:00Z&to=2026-11-01T00:00:00Z", nil, nil, 400, "from"},
		{"export in an unknown format", "GET", "/directory/export?format=xml", nil, nil, 400, "format"},
		{"Idempotency-Key with a control character", "POST", "/domains", `{"name":"k.example"}`, []string{"Idempotency-Key", "a\tb"}, 400, "Idempotency-Key"},
		{"import with an invalid record", "POST", "/directory/import", `{"mailboxes":[{"address":"ok@example.com"},{"address":"bad"}]}`, nil, 400, "mailboxes.1.address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(adminUser, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			p := r.json(t)
			if p["status"] != float64(tt.status) || !strings.HasPrefix(p["type"].(string), "https://mailroom.dev/problems/") {
				t.Errorf("problem %v does not describe a %d", p, tt.status)
			}
			if tt.field != "" && p["field"] != tt.field {
				t.Errorf("field = %v, want %q (%v)", p["field"], tt.field, p["detail"])
			}
		})
	}

	after := e.must(adminUser, 200, "GET", "/directory/export", nil).body
	if string(after) != string(before) {
		t.Errorf("invalid requests changed the directory:\nbefore %s\nafter  %s", before, after)
	}
	if n := len(e.must(adminUser, 200, "GET", "/audit?limit=1000", nil).json(t)["items"].([]any)); n != auditBefore {
		t.Errorf("audit log has %d entries after invalid requests, want %d", n, auditBefore)
	}
}

func TestUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", 404},
		{"PUT", "/domains/example.com", 405},
		{"GET", "/domains/nope.example", 404},
	} {
		r := e.do(adminUser, tt.method, tt.path, nil)
		if r.status != tt.want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %q, want %d as problem+json", tt.method, tt.path, r.status, r.header.Get("Content-Type"), tt.want)
		}
	}
}

// TestOptimisticConcurrency checks ETags: a write naming a stale version gets 412 and changes
// nothing; the current one succeeds and moves the ETag on.
func TestOptimisticConcurrency(t *testing.T) {
	e := newEnv(t)
	e.seed()
	get := e.must(adminUser, 200, "GET", "/mailboxes/carl@example.com", nil)
	tag := get.header.Get("ETag")
	if tag != `"1"` {
		t.Fatalf("ETag %q, want \"1\"", tag)
	}
	upd := e.must(adminUser, 200, "PATCH", "/mailboxes/carl@example.com", `{"displayName":"Carl"}`, "If-Match", tag)
	if got := upd.header.Get("ETag"); got != `"2"` {
		t.Errorf("ETag after update %q, want \"2\"", got)
	}
	stale := e.do(adminUser, "PATCH", "/mailboxes/carl@example.com", `{"displayName":"Carlos"}`, "If-Match", tag)
	if stale.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: status %d, want 412: %s", stale.status, stale.body)
	}
	if got := e.must(adminUser, 200, "GET", "/mailboxes/carl@example.com", nil).json(t)["displayName"]; got != "Carl" {
		t.Errorf("displayName after a stale write = %v, want Carl", got)
	}
	if r := e.do(adminUser, "DELETE", "/mailboxes/carl@example.com", nil, "If-Match", tag); r.status != 412 {
		t.Errorf("stale delete: status %d, want 412", r.status)
	}
	// Group membership changes move the group's ETag: a manager's stale view of a group is caught.
	g := e.must(adminUser, 200, "GET", "/groups/sales", nil).header.Get("ETag")
	e.must(adminUser, 201, "POST", "/groups/sales/members", `{"kind":"mailbox","address":"carl@example.com"}`, "If-Match", g)
	if r := e.do(adminUser, "DELETE", "/groups/sales/members/mailbox:carl@example.com", nil, "If-Match", g); r.status != 412 {
		t.Errorf("member removal with the group's old ETag: status %d, want 412", r.status)
	}
}

// TestIdempotencyKey checks that a POST repeated with its key is done once and answered the same,
// and that the key cannot be reused for another request.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.seed()
	body := `{"address":"dana@example.com","displayName":"Dana"}`
	first := e.must(adminUser, 201, "POST", "/mailboxes", body, "Idempotency-Key", "k-1")
	again := e.must(adminUser, 201, "POST", "/mailboxes", body, "Idempotency-Key", "k-1")
	if again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
		t.Errorf("replay: header %q body %s, want the first answer %s", again.header.Get("Idempotent-Replayed"), again.body, first.body)
	}
	if again.header.Get("Location") != first.header.Get("Location") || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Errorf("replayed headers differ: %v vs %v", again.header, first.header)
	}
	other := e.do(adminUser, "POST", "/mailboxes", `{"address":"erin@example.com"}`, "Idempotency-Key", "k-1")
	if other.status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other request: status %d, want 422: %s", other.status, other.body)
	}
	// Keys belong to the caller: another admin's k-1 is a different key.
	otherAdmin := adminUser
	otherAdmin.Subject = "u-admin-2"
	e.must(otherAdmin, 201, "POST", "/mailboxes", `{"address":"erin@example.com"}`, "Idempotency-Key", "k-1")

	audit := e.must(adminUser, 200, "GET", "/audit?resource=mailbox:dana@example.com", nil).json(t)
	if n := len(audit["items"].([]any)); n != 1 {
		t.Errorf("audit has %d entries for the mailbox created twice with one key, want 1", n)
	}
}

// TestPagination walks a listing page by page: every item once, in order.
func TestPagination(t *testing.T) {
	e := newEnv(t)
	e.seed()
	for i := range 45 {
		e.must(adminUser, 201, "POST", "/groups", map[string]any{"id": fmt.Sprintf("team-%02d", i), "name": fmt.Sprintf("Team %d", i)})
	}
	var ids []string
	path, pages := "/groups?limit=10", 0
	for {
		page := e.must(auditorUser, 200, "GET", path, nil).json(t)
		pages++
		for _, g := range page["items"].([]any) {
			ids = append(ids, g.(map[string]any)["id"].(string))
		}
		next, _ := page["next"].(string)
		if next == "" {
			break
		}
		path = "/groups?limit=10&cursor=" + next
	}
	if len(ids) != 48 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 48 {
		t.Errorf("listed %d groups over %d pages (sorted %v), want 48 distinct in order", len(ids), pages, slices.IsSorted(ids))
	}
	if pages != 5 {
		t.Errorf("pages = %d, want 5", pages)
	}
}

// TestGroupsEndToEnd covers nesting, cycles, expansion and the audit trail of a change.
func TestGroupsEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.seed()
	a := adminUser
	for _, id := range []string{"apac", "my", "vn"} {
		e.must(a, 201, "POST", "/groups", map[string]any{"id": id, "name": strings.ToUpper(id), "type": "region"})
	}
	e.must(a, 201, "POST", "/groups/sales/members", `{"kind":"group","group":"apac"}`)
	e.must(a, 201, "POST", "/groups/apac/members", `{"kind":"group","group":"my"}`)
	e.must(a, 201, "POST", "/groups/apac/members", `{"kind":"group","group":"vn"}`)
	e.must(a, 201, "POST", "/groups/my/members", `{"kind":"mailbox","address":"ana@example.com"}`)
	e.must(a, 201, "POST", "/groups/vn/members", `{"kind":"mailbox","address":"carl@example.com"}`)
	e.must(a, 201, "POST", "/groups/vn/members", `{"kind":"external","address":"x@partner.example"}`)
	if r := e.must(a, 200, "POST", "/groups/vn/members", `{"kind":"external","address":"X@Partner.example"}`); !strings.Contains(string(r.body), "x@partner.example") {
		t.Errorf("adding an existing member again: %s", r.body)
	}

	cyc := e.do(a, "POST", "/groups/vn/members", `{"kind":"group","group":"sales"}`)
	if cyc.status != http.StatusConflict {
		t.Fatalf("cycle: status %d, want 409: %s", cyc.status, cyc.body)
	}
	if got, want := fmt.Sprint(cyc.json(t)["cycle"]), "[vn sales apac vn]"; got != want {
		t.Errorf("cycle = %s, want %s", got, want)
	}

	e.must(a, 200, "PATCH", "/mailboxes/carl@example.com", `{"status":"closed"}`)
	exp := e.must(a, 200, "GET", "/groups/sales/expanded", nil).json(t)
	if got, want := fmt.Sprint(exp["addresses"]), "[ana@corp.example x@partner.example]"; got != want {
		t.Errorf("expanded addresses = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(exp["groups"]), "[apac my sales vn]"; got != want {
		t.Errorf("expanded groups = %s, want %s", got, want)
	}
	if got := fmt.Sprint(exp["skipped"]); !strings.Contains(got, "carl@example.com") || !strings.Contains(got, "closed") {
		t.Errorf("skipped = %s, want carl@example.com closed", got)
	}

	// The closed member shows in the review report.
	rev := e.must(auditorUser, 200, "GET", "/reports/groups", nil).json(t)
	if got := fmt.Sprint(rev["inactiveMembers"]); !strings.Contains(got, "carl@example.com") {
		t.Errorf("review inactive members = %s, want carl@example.com", got)
	}

	// A mailbox an alias points at cannot be deleted; the answer names the alias.
	del := e.do(a, "DELETE", "/mailboxes/ana@example.com", nil)
	if del.status != 409 || !strings.Contains(string(del.body), "spare-alias@example.com") {
		t.Errorf("deleting a mailbox with an alias: %d %s, want 409 naming the alias", del.status, del.body)
	}

	// The audit log has who, what, before and after.
	audit := e.must(auditorUser, 200, "GET", "/audit?resource=mailbox:carl@example.com", nil).json(t)
	items := audit["items"].([]any)
	if len(items) < 2 {
		t.Fatalf("audit for carl has %d entries, want create and update", len(items))
	}
	last := items[0].(map[string]any) // newest first
	if last["action"] != "mailbox.update" || last["before"].(map[string]any)["status"] != "active" || last["after"].(map[string]any)["status"] != "closed" {
		t.Errorf("newest audit entry = %v, want mailbox.update from active to closed", last)
	}
	if last["actor"].(map[string]any)["subject"] != adminUser.Subject {
		t.Errorf("audit actor = %v, want %s", last["actor"], adminUser.Subject)
	}
	byActor := e.must(auditorUser, 200, "GET", "/audit?actor="+adminUser.Subject+"&limit=5", nil).json(t)
	if n := len(byActor["items"].([]any)); n != 5 || byActor["next"] == nil {
		t.Errorf("audit by actor: %d items, next %v; want a full page of 5 and more", n, byActor["next"])
	}
}

// TestInternationalDomains checks that a domain given in Unicode is stored as punycode and that its
// addresses are found either way.
func TestInternationalDomains(t *testing.T) {
	e := newEnv(t)
	d := e.must(adminUser, 201, "POST", "/domains", `{"name":"Bücher.example"}`).json(t)
	if d["name"] != "xn--bcher-kva.example" || d["unicodeName"] != "bücher.example" {
		t.Errorf("domain = %v, want name xn--bcher-kva.example and unicodeName bücher.example", d)
	}
	m := e.must(adminUser, 201, "POST", "/mailboxes", `{"address":"Anna@bücher.example"}`).json(t)
	if m["address"] != "anna@xn--bcher-kva.example" {
		t.Errorf("address = %v, want anna@xn--bcher-kva.example", m["address"])
	}
	e.must(adminUser, 200, "GET", "/mailboxes/anna@b%C3%BCcher.example", nil)
	if r := e.do(adminUser, "POST", "/mailboxes", `{"address":"anna@BÜCHER.example"}`); r.status != 409 {
		t.Errorf("the same address in another spelling: status %d, want 409", r.status)
	}
}
