package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailroom/mailroom/api"
	"github.com/mailroom/mailroom/api/apitest"
)

// recorder is a testing.TB that keeps what the validator reports instead of failing the test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// exchange is one request and the response a handler might give it.
type exchange struct {
	method, target string
	reqHeader      http.Header
	reqBody        string
	status         int
	header         http.Header
	body           string
}

func (e exchange) request() *http.Request {
	r := httptest.NewRequest(e.method, e.target, strings.NewReader(e.reqBody))
	r.Header.Set("Authorization", "Bearer x.y.z")
	for k, vs := range e.reqHeader {
		r.Header[k] = vs
	}
	return r
}

func h(kv ...string) http.Header {
	hs := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		hs.Set(kv[i], kv[i+1])
	}
	return hs
}

var (
	jsonCT    = h("Content-Type", "application/json")
	problemCT = h("Content-Type", "application/problem+json")
)

const (
	domain = `{"name":"example.com","unicodeName":"example.com","unknownRecipients":"bounce",` +
		`"version":1,"createdAt":"2025-01-31T09:00:00Z","updatedAt":"2025-01-31T09:00:00Z"}`
	mailbox = `{"address":"ana@example.com","displayName":"Ana Lim","forwardTo":["ana.lim@corp.example"],` +
		`"status":"active","manager":"boss@example.com","locale":"ms-MY","timeZone":"Asia/Kuala_Lumpur",` +
		`"version":3,"createdAt":"2025-01-31T09:00:00Z","updatedAt":"2025-02-01T10:30:00.123Z"}`
	group = `{"id":"sales","name":"Sales","description":"Sales team, APAC and EU","type":"department",` +
		`"addresses":["sales@example.com"],"owners":["boss@example.com"],` +
		`"posting":{"policy":"allow-list","allow":["@corp.example","ceo@other.example"],"moderators":[]},` +
		`"expires":"2027-03-31","memberCount":12,"version":4,` +
		`"createdAt":"2025-01-31T09:00:00Z","updatedAt":"2025-01-31T09:00:00Z"}`
	notFound = `{"type":"https://mailroom.dev/problems/not-found","title":"Not found","status":404,"detail":"no group sales"}`
)

// valid are exchanges a correct handler could produce; none may be reported.
var valid = map[string]exchange{
	"me": {method: "GET", target: "/me", status: 200, header: jsonCT,
		body: `{"subject":"u-1","email":"boss@example.com","roles":["group-manager"],"scopes":[]}`},
	"list domains": {method: "GET", target: "/domains?limit=10&cursor=abc", status: 200, header: jsonCT,
		body: `{"items":[` + domain + `],"next":"def"}`},
	"last page": {method: "GET", target: "/mailboxes", status: 200, header: jsonCT, body: `{"items":[` + mailbox + `]}`},
	"create domain": {method: "POST", target: "/domains", reqHeader: h("Content-Type", "application/json", "Idempotency-Key", "k 1"),
		reqBody: `{"name":"Example.COM"}`,
		status:  201, header: h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`),
		body: domain},
	"replayed create": {method: "POST", target: "/domains", reqHeader: h("Content-Type", "application/json", "Idempotency-Key", "k 1"),
		reqBody: `{"name":"example.com"}`,
		status:  201, header: h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`, "Idempotent-Replayed", "true"),
		body: domain},
	"read-only fields sent back": {method: "POST", target: "/domains", reqHeader: jsonCT, reqBody: domain,
		status: 201, header: h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`), body: domain},
	"catch-all": {method: "POST", target: "/domains", reqHeader: jsonCT,
		reqBody: `{"name":"example.com","unknownRecipients":"catch-all","catchAll":"Inbox@Example.com"}`,
		status:  201, header: h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`),
		body: strings.Replace(domain, `"bounce"`, `"catch-all","catchAll":"inbox@example.com"`, 1)},
	"internationalised address": {method: "POST", target: "/mailboxes", reqHeader: jsonCT,
		reqBody: `{"address":"anna@bücher.example","forwardTo":[]}`,
		status:  201, header: h("Content-Type", "application/json", "Location", "/mailboxes/anna@xn--bcher-kva.example", "ETag", `"1"`),
		body: strings.Replace(mailbox, "ana@example.com", "anna@xn--bcher-kva.example", 1)},
	"merge patch": {method: "PATCH", target: "/mailboxes/ana@example.com",
		reqHeader: h("Content-Type", "application/merge-patch+json", "If-Match", `"3"`),
		reqBody:   `{"manager":null,"locale":"en-GB","version":3}`,
		status:    200, header: h("Content-Type", "application/json", "ETag", `"4"`),
		body: strings.Replace(mailbox, `"manager":"boss@example.com",`, "", 1)},
	"patch as plain JSON": {method: "PATCH", target: "/groups/sales", reqHeader: jsonCT,
		reqBody: `{"posting":{"policy":"members","allow":null},"expires":null}`,
		status:  200, header: h("Content-Type", "application/json", "ETag", `"5"`), body: group},
	"delete": {method: "DELETE", target: "/domains/example.com", reqHeader: h("If-Match", `"1"`), status: 204},
	"escaped path": {method: "GET", target: "/domains/b%C3%BCcher.example", status: 200,
		header: h("Content-Type", "application/json", "ETag", `"1"`),
		body:   strings.NewReplacer("example.com", "xn--bcher-kva.example", `"unicodeName":"xn--bcher-kva.example"`, `"unicodeName":"bücher.example"`).Replace(domain)},
	"escaped member": {method: "DELETE", target: "/groups/sales/members/mailbox:ana%40example.com", status: 204},
	"get group": {method: "GET", target: "/groups/sales", status: 200,
		header: h("Content-Type", "application/json; charset=utf-8", "ETag", `"4"`), body: group},
	"add member": {method: "POST", target: "/groups/sales/members", reqHeader: jsonCT,
		reqBody: `{"kind":"group","group":"sales-apac"}`,
		status:  201, header: h("Content-Type", "application/json", "Location", "/groups/sales/members/group:sales-apac"),
		body: `{"kind":"group","group":"sales-apac"}`},
	"member already there": {method: "POST", target: "/groups/sales/members", reqHeader: jsonCT,
		reqBody: `{"kind":"mailbox","address":"Ana@Example.com"}`,
		status:  200, header: jsonCT, body: `{"kind":"mailbox","address":"ana@example.com"}`},
	"list members": {method: "GET", target: "/groups/sales/members", status: 200, header: jsonCT,
		body: `{"items":[{"kind":"mailbox","address":"ana@example.com"},{"kind":"external","address":"partner@other.example"},{"kind":"group","group":"sales-apac"}]}`},
	"remove member": {method: "DELETE", target: "/groups/sales/members/external:partner@other.example", status: 204},
	"expand": {method: "GET", target: "/groups/sales/expanded", status: 200, header: jsonCT,
		body: `{"group":"sales","addresses":["ana.lim@corp.example","partner@other.example"],"groups":["sales","sales-apac"],` +
			`"skipped":[{"address":"bob@example.com","reason":"closed"}]}`},
	"audit": {method: "GET", target: "/audit?from=2025-01-01T00:00:00Z&resource=group:sales&limit=1", status: 200, header: jsonCT,
		body: `{"items":[{"id":"01J","at":"2025-01-31T09:00:00Z","actor":{"subject":"u-1","roles":["admin"]},` +
			`"action":"group.add-member","resource":"group:sales","before":{"memberCount":1},"after":{"memberCount":2},"requestId":"r-1"}]}`},
	"export json": {method: "GET", target: "/directory/export", status: 200, header: jsonCT,
		body: `{"domains":[` + domain + `],"mailboxes":[],"aliases":[],"groups":[` +
			strings.Replace(group, `"id":"sales"`, `"id":"sales","members":[{"kind":"mailbox","address":"ana@example.com"}]`, 1) + `]}`},
	"export csv": {method: "GET", target: "/directory/export?format=csv&kind=aliases", status: 200,
		header: h("Content-Type", "text/csv; charset=utf-8", "Content-Disposition", `attachment; filename="mailroom-aliases.csv"`),
		body:   "address,target\ninfo@example.com,sales@example.com\n"},
	"import json": {method: "POST", target: "/directory/import?dryRun=true", reqHeader: jsonCT,
		reqBody: `{"mailboxes":[{"address":"ana@example.com"}],"groups":[{"name":"Sales","type":"department","members":[{"kind":"mailbox","address":"ana@example.com"}]}]}`,
		status:  200, header: jsonCT,
		body: `{"dryRun":true,"created":3,"updated":0,"unchanged":0,"results":[{"kind":"mailbox","id":"ana@example.com","outcome":"created"},` +
			`{"kind":"group","id":"sales","outcome":"created"},{"kind":"member","id":"sales/mailbox:ana@example.com","outcome":"created"}]}`},
	"import csv": {method: "POST", target: "/directory/import?kind=members", reqHeader: h("Content-Type", "text/csv"),
		reqBody: "group,kind,member\nsales,mailbox,ana@example.com\n",
		status:  200, header: jsonCT,
		body: `{"dryRun":false,"created":0,"updated":0,"unchanged":1,"results":[{"kind":"member","id":"sales/mailbox:ana@example.com","outcome":"unchanged"}]}`},
	"review": {method: "GET", target: "/reports/groups", status: 200, header: jsonCT,
		body: `{"expired":[{"id":"launch","name":"Launch","expires":"2024-12-31"}],"empty":[],"unowned":[{"id":"sales","name":"Sales"}],` +
			`"inactiveMembers":[{"group":"sales","address":"bob@example.com","status":"closed"}]}`},
	"document":  {method: "GET", target: "/openapi.yaml", status: 200, header: h("Content-Type", "application/yaml"), body: string(api.Document)},
	"not found": {method: "GET", target: "/groups/sales", status: 404, header: problemCT, body: notFound},
	"cycle": {method: "POST", target: "/groups/sales-apac/members", reqHeader: jsonCT, reqBody: `{"kind":"group","group":"sales"}`,
		status: 409, header: problemCT,
		body: `{"type":"https://mailroom.dev/problems/conflict","title":"Conflict","status":409,"cycle":["sales","sales-apac","sales"]}`},
	"stale": {method: "PATCH", target: "/aliases/info@example.com", reqHeader: h("Content-Type", "application/merge-patch+json", "If-Match", `"1"`),
		reqBody: `{"target":"ana@example.com"}`, status: 412, header: problemCT,
		body: `{"type":"https://mailroom.dev/problems/precondition-failed","title":"Precondition failed","status":412}`},
	"unavailable": {method: "GET", target: "/aliases", status: 503, header: h("Content-Type", "application/problem+json", "Retry-After", "1"),
		body: `{"type":"https://mailroom.dev/problems/unavailable","title":"Service unavailable","status":503}`},
	// Requests made invalid on purpose: the handler refused them, so only the response counts.
	"unknown field refused": {method: "POST", target: "/domains", reqHeader: jsonCT, reqBody: `{"name":"example.com","bogus":1}`,
		status: 400, header: problemCT,
		body: `{"type":"https://mailroom.dev/problems/invalid","title":"Invalid request","status":400,"detail":"unknown field","field":"bogus"}`},
	"limit out of range refused": {method: "GET", target: "/domains?limit=0", status: 400, header: problemCT,
		body: `{"type":"https://mailroom.dev/problems/invalid","title":"Invalid request","status":400,` +
			`"errors":[{"field":"limit","detail":"must be a number from 1 to 1000"}]}`},
	"no such path, and the handler agrees": {method: "GET", target: "/nope", status: 404, header: problemCT, body: notFound},
	"no such method, and the handler agrees": {method: "PUT", target: "/domains/example.com", reqHeader: jsonCT, reqBody: domain,
		status: 405, header: problemCT,
		body: `{"type":"https://mailroom.dev/problems/method-not-allowed","title":"Method not allowed","status":405}`},
}

func TestValidExchangesPass(t *testing.T) {
	v := apitest.New(t)
	for name, e := range valid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			v.Check(rec, e.request(), []byte(e.reqBody), e.status, e.header, []byte(e.body))
			for _, err := range rec.errors {
				t.Errorf("reported a valid exchange:\n%s", err)
			}
		})
	}
}

// TestValidatorFails proves that each kind of disagreement between handler and document is
// reported, and that the report names the operation.
func TestValidatorFails(t *testing.T) {
	v := apitest.New(t)
	for _, c := range []struct {
		name string
		e    exchange
		want []string // in the one report
	}{
		{"field of the wrong type", exchange{method: "GET", target: "/domains/example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"1"`), body: strings.Replace(domain, `"version":1`, `"version":"1"`, 1)},
			[]string{"getDomain (GET /domains/{name})", "response 200", "version"}},
		{"undocumented status", exchange{method: "DELETE", target: "/domains/example.com", status: 200, header: jsonCT, body: domain},
			[]string{"deleteDomain", "response 200", "status is not supported"}},
		{"missing required field", exchange{method: "GET", target: "/groups/sales", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"4"`),
			body:   strings.Replace(group, `"posting":{"policy":"allow-list","allow":["@corp.example","ceo@other.example"],"moderators":[]},`, "", 1)},
			[]string{"getGroup", "posting"}},
		{"undocumented path", exchange{method: "GET", target: "/nope", status: 200, header: jsonCT, body: `{}`},
			[]string{"GET /nope", "no such operation", "answered 200"}},
		{"undocumented method", exchange{method: "PUT", target: "/domains/example.com", reqHeader: jsonCT, reqBody: domain,
			status: 200, header: jsonCT, body: domain},
			[]string{"PUT /domains/example.com", "no such operation"}},
		{"undocumented field in a response", exchange{method: "GET", target: "/groups/sales/members", status: 200, header: jsonCT,
			body: `{"items":[{"kind":"mailbox","address":"ana@example.com","forwardTo":[]}]}`},
			[]string{"listMembers", "forwardTo"}},
		{"null for a list", exchange{method: "GET", target: "/mailboxes/ana@example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"3"`), body: strings.Replace(mailbox, `["ana.lim@corp.example"]`, "null", 1)},
			[]string{"getMailbox", "forwardTo"}},
		{"address not in stored form", exchange{method: "GET", target: "/aliases/info@example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"1"`),
			body:   `{"address":"Info@Example.com","target":"sales@example.com","targetKind":"group","version":1,"createdAt":"2025-01-31T09:00:00Z","updatedAt":"2025-01-31T09:00:00Z"}`},
			[]string{"getAlias", "address"}},
		{"time not in UTC", exchange{method: "GET", target: "/domains/example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"1"`), body: strings.Replace(domain, `"2025-01-31T09:00:00Z"`, `"2025-01-31T17:00:00+08:00"`, 1)},
			[]string{"getDomain", "createdAt"}},
		{"catch-all without catchAll", exchange{method: "GET", target: "/domains/example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `"1"`), body: strings.Replace(domain, `"bounce"`, `"catch-all"`, 1)},
			[]string{"getDomain", "catchAll"}},
		{"missing ETag", exchange{method: "GET", target: "/domains/example.com", status: 200, header: jsonCT, body: domain},
			[]string{"getDomain", "ETag"}},
		{"ETag not a version", exchange{method: "GET", target: "/domains/example.com", status: 200,
			header: h("Content-Type", "application/json", "ETag", `W/"abc"`), body: domain},
			[]string{"getDomain", "ETag"}},
		{"create without Location", exchange{method: "POST", target: "/aliases", reqHeader: jsonCT,
			reqBody: `{"address":"info@example.com","target":"sales@example.com"}`,
			status:  201, header: h("Content-Type", "application/json", "ETag", `"1"`),
			body: `{"address":"info@example.com","target":"sales@example.com","targetKind":"group","version":1,"createdAt":"2025-01-31T09:00:00Z","updatedAt":"2025-01-31T09:00:00Z"}`},
			[]string{"createAlias", "Location"}},
		{"204 with a body", exchange{method: "DELETE", target: "/groups/sales", status: 204, header: jsonCT, body: group},
			[]string{"deleteGroup", "has a body"}},
		{"error as plain JSON", exchange{method: "GET", target: "/groups/sales", status: 404, header: jsonCT, body: notFound},
			[]string{"getGroup", "response 404", "application/json"}},
		{"problem with the wrong status", exchange{method: "GET", target: "/groups/sales", status: 404, header: problemCT,
			body: strings.Replace(notFound, `"status":404`, `"status":400`, 1)},
			[]string{"getGroup", "response 404", "status"}},
		{"CSV with the wrong columns", exchange{method: "GET", target: "/directory/export?format=csv&kind=aliases", status: 200,
			header: h("Content-Type", "text/csv"), body: "address,target,targetKind\ninfo@example.com,sales@example.com,group\n"},
			[]string{"exportDirectory", "does not match pattern"}},
		{"unknown field accepted", exchange{method: "POST", target: "/domains", reqHeader: jsonCT, reqBody: `{"name":"example.com","bogus":1}`,
			status: 201, header: h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`), body: domain},
			[]string{"createDomain", "answered 201 to a request", "bogus"}},
		{"limit out of range accepted", exchange{method: "GET", target: "/domains?limit=5000", status: 200, header: jsonCT, body: `{"items":[]}`},
			[]string{"listDomains", "answered 200 to a request", "limit"}},
		{"bad member reference accepted", exchange{method: "DELETE", target: "/groups/sales/members/ana@example.com", status: 204},
			[]string{"removeMember", "member"}},
		{"wrong media type accepted", exchange{method: "PATCH", target: "/domains/example.com", reqHeader: h("Content-Type", "text/plain"),
			reqBody: "drop", status: 200, header: h("Content-Type", "application/json", "ETag", `"2"`), body: domain},
			[]string{"updateDomain", "Content-Type"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			v.Check(rec, c.e.request(), []byte(c.e.reqBody), c.e.status, c.e.header, []byte(c.e.body))
			if len(rec.errors) != 1 {
				t.Fatalf("got %d reports, want 1: %q", len(rec.errors), rec.errors)
			}
			t.Log(rec.errors[0])
			for _, want := range c.want {
				if !strings.Contains(rec.errors[0], want) {
					t.Errorf("report does not mention %q:\n%s", want, rec.errors[0])
				}
			}
		})
	}
}

func TestCheckResponseIgnoresTheRequest(t *testing.T) {
	v := apitest.New(t)
	// A handler that (wrongly) accepted the unknown field: CheckResponse is for requests that
	// are invalid on purpose, so it looks at the response alone.
	req := exchange{method: "POST", target: "/domains", reqHeader: jsonCT, reqBody: `{"name":"example.com","bogus":1}`}.request()
	created := h("Content-Type", "application/json", "Location", "/domains/example.com", "ETag", `"1"`)

	rec := &recorder{TB: t}
	v.CheckResponse(rec, req, 201, created, []byte(domain))
	if len(rec.errors) != 0 {
		t.Errorf("reported a documented response: %q", rec.errors)
	}
	v.CheckResponse(rec, req, 201, created, []byte(`{"name":"example.com"}`))
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "createDomain") {
		t.Errorf("got reports %q, want one about createDomain's response", rec.errors)
	}
}

func TestMiddleware(t *testing.T) {
	v := apitest.New(t)
	var gotBody string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/me":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"subject":"u-1","roles":["admin"],"scopes":[]}`)
		case "/groups/sales/members":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Location", "/groups/sales/members/mailbox:ana@example.com")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"kind":"mailbox","address":"ana@example.com","status":"retired"}`)
		}
	})
	rec := &recorder{TB: t}
	srv := httptest.NewServer(v.Middleware(rec, handler))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if got, want := string(body), `{"subject":"u-1","roles":["admin"],"scopes":[]}`; got != want {
		t.Errorf("client got %q, want the handler's %q", got, want)
	}
	if len(rec.errors) != 0 {
		t.Errorf("reported a valid exchange: %q", rec.errors)
	}

	const member = `{"kind":"mailbox","address":"ana@example.com"}`
	res, err = http.Post(srv.URL+"/groups/sales/members", "application/json", strings.NewReader(member))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotBody != member {
		t.Errorf("handler read %q, want the request body %q", gotBody, member)
	}
	if got, want := res.StatusCode, http.StatusCreated; got != want {
		t.Errorf("client got status %d, want the handler's %d", got, want)
	}
	if got, want := res.Header.Get("Location"), "/groups/sales/members/mailbox:ana@example.com"; got != want {
		t.Errorf("client got Location %q, want the handler's %q", got, want)
	}
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "addMember") || !strings.Contains(rec.errors[0], "status") {
		t.Errorf("got reports %q, want one about addMember's undocumented status value", rec.errors)
	}
}

func TestOperations(t *testing.T) {
	// The endpoints of docs/admin-api.md. A handler test compares its routes with
	// Operations() the same way.
	want := []string{
		"DELETE /aliases/{address}",
		"DELETE /calendars/{id}",
		"DELETE /destinations/{address}/suspension",
		"DELETE /domains/{name}",
		"DELETE /groups/{id}",
		"DELETE /groups/{id}/acknowledgement",
		"DELETE /groups/{id}/members/{member}",
		"DELETE /mailboxes/{address}",
		"DELETE /mailboxes/{address}/closed-notice",
		"DELETE /mailboxes/{address}/out-of-office",
		"DELETE /routing/rules/{id}",
		"DELETE /sla/policies/{id}",
		"GET /aliases",
		"GET /aliases/{address}",
		"GET /archive/messages/{id}",
		"GET /archive/search",
		"GET /audit",
		"GET /autoreplies/rules",
		"GET /autoreplies/templates",
		"GET /calendars",
		"GET /calendars/{id}",
		"GET /conversations",
		"GET /conversations/{id}",
		"GET /destinations",
		"GET /destinations/{address}",
		"GET /destinations/{address}/outcomes",
		"GET /directory/export",
		"GET /domains",
		"GET /domains/{name}",
		"GET /groups",
		"GET /groups/{id}",
		"GET /groups/{id}/acknowledgement",
		"GET /groups/{id}/expanded",
		"GET /groups/{id}/members",
		"GET /mailboxes",
		"GET /mailboxes/{address}",
		"GET /mailboxes/{address}/closed-notice",
		"GET /mailboxes/{address}/out-of-office",
		"GET /me",
		"GET /moderation",
		"GET /moderation/{id}",
		"GET /moderation/{id}/decide",
		"GET /openapi.yaml",
		"GET /originals/{ref}",
		"GET /reports/groups",
		"GET /reports/sla",
		"GET /routing/rules",
		"GET /routing/rules/{id}",
		"GET /sla/policies",
		"GET /sla/policies/{id}",
		"PATCH /aliases/{address}",
		"PATCH /calendars/{id}",
		"PATCH /domains/{name}",
		"PATCH /groups/{id}",
		"PATCH /groups/{id}/acknowledgement",
		"PATCH /mailboxes/{address}",
		"PATCH /mailboxes/{address}/closed-notice",
		"PATCH /mailboxes/{address}/out-of-office",
		"PATCH /routing/rules/{id}",
		"PATCH /sla/policies/{id}",
		"POST /aliases",
		"POST /autoreplies/preview",
		"POST /calendars",
		"POST /calendars/{id}/holidays",
		"POST /conversations/{id}/pause",
		"POST /conversations/{id}/resume",
		"POST /directory/import",
		"POST /domains",
		"POST /groups",
		"POST /groups/{id}/members",
		"POST /mailboxes",
		"POST /moderation/{id}/approve",
		"POST /moderation/{id}/decide",
		"POST /moderation/{id}/reject",
		"POST /routing/explain",
		"POST /routing/rules",
		"POST /sla/policies",
		"PUT /groups/{id}/acknowledgement",
		"PUT /mailboxes/{address}/closed-notice",
		"PUT /mailboxes/{address}/out-of-office",
	}
	if got := apitest.New(t).Operations(); !slices.Equal(got, want) {
		t.Errorf("Operations() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
