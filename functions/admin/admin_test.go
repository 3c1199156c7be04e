package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/api/apitest"
	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/moderation"
	"github.com/mailroom/mailroom/shared/s3store"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// env is the admin API as a user reaches it on the local stack: the handler behind the local API
// Gateway front, which verifies real tokens, on its own DynamoDB Local tables. Every exchange is
// checked against api/openapi.yaml.
type env struct {
	t       *testing.T
	handler *admin.Handler
	url     string
	keys    *apigw.Keys
	logs    *bytes.Buffer
	cfg     admin.Config
	clients awsclient.Clients
	// dests records outcomes in the handler's state table, as the SES-events function does.
	dests *destinations.Service
	// holds and objects put held mail where the inbound function would.
	holds   *dynamo.Holds
	objects *s3store.Store
}

// The people in the tests. Ana is an employee in the sales group, which Boss owns.
var (
	adminUser   = apigw.Claims{Subject: "u-admin", Email: "root@example.com", Roles: []string{"admin"}}
	managerUser = apigw.Claims{Subject: "u-boss", Email: "boss@example.com", Roles: []string{"group-manager"}}
	auditorUser = apigw.Claims{Subject: "u-audit", Email: "audit@example.com", Roles: []string{"auditor"}}
	employeeAna = apigw.Claims{Subject: "u-ana", Email: "ana@example.com", Roles: []string{"employee"}}
	nobody      = apigw.Claims{Subject: "u-none", Email: "none@example.com"}
)

func newEnv(t *testing.T) *env {
	t.Helper()
	clients := devstacktest.Clients(t)
	cfg := admin.Config{
		DirectoryTable: devstacktest.Table(t, "DirectoryTable"),
		AuditTable:     devstacktest.Table(t, "AuditTable"),
		StateTable:     devstacktest.Table(t, "StateTable"),
		MailBucket:     devstacktest.Bucket(t, "MailBucket"),
		ArchiveTable:   devstacktest.Table(t, "ArchiveTable"),
		RolesClaim:     apigw.RolesClaim,
	}
	logs := &bytes.Buffer{}
	h, err := admin.New(cfg, clients, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apigw.LoadOrCreateKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	front, err := apigw.New(apigw.Config{
		Handler: h.Handle,
		Keys:    keys,
		Public:  admin.Public,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apitest.New(t).Middleware(t, front))
	t.Cleanup(srv.Close)
	dests := &destinations.Service{Store: dynamo.NewDestinations(clients.DynamoDB, cfg.StateTable), Notifier: quietNotifier{}}
	return &env{t: t, handler: h, url: srv.URL, keys: keys, logs: logs, dests: dests, cfg: cfg, clients: clients,
		holds: dynamo.NewHolds(clients.DynamoDB, cfg.StateTable), objects: s3store.New(clients.S3, cfg.MailBucket)}
}

// hold puts a message in the sales group's moderation as the inbound function would: the original
// in the archive, the hold in the state table.
func (e *env) hold(id string) {
	e.t.Helper()
	ctx := context.Background()
	key := "archive/2026/11/23/" + id + ".eml"
	raw := "From: Kim <kim@client.example>\r\nTo: sales@example.com\r\nSubject: Held " + id +
		"\r\nMessage-ID: <" + id + "@client.example>\r\n\r\nHello.\r\n"
	if _, err := e.objects.Put(ctx, key, strings.NewReader(raw), int64(len(raw))); err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := e.holds.Create(ctx, moderation.Hold{
		ID: id, Message: id, Key: key, Group: "sales", Address: "sales@example.com", Recipient: "sales@example.com",
		From: mail.Address{Name: "Kim", Address: "kim@client.example"}, Subject: "Held " + id, Size: int64(len(raw)),
		HeldAt: now, Expires: now.Add(moderation.DefaultTTL), Status: moderation.StatusHeld, Notified: true,
	}); err != nil {
		e.t.Fatal(err)
	}
}

// quietNotifier takes suspension notices and sends nothing.
type quietNotifier struct{}

func (quietNotifier) Notify(context.Context, destinations.Notice) error { return nil }

// record stores outcomes as the SES-events function would, suspending what they condemn.
func (e *env) record(outcomes ...destinations.Outcome) {
	e.t.Helper()
	if err := e.dests.Record(context.Background(), outcomes); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends one request as who; body is sent as JSON unless it is a string or []byte already.
func (e *env) do(who apigw.Claims, method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case rfc822:
		rd, ct = bytes.NewReader(b), "message/rfc822"
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	if method == http.MethodPatch {
		ct = "application/merge-patch+json"
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if who.Subject != "" {
		tok, err := e.keys.Issue(who)
		if err != nil {
			e.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request that has to succeed with status want.
func (e *env) must(who apigw.Claims, want int, method, path string, body any, headers ...string) response {
	e.t.Helper()
	r := e.do(who, method, path, body, headers...)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// seed builds the directory the role tests run against.
func (e *env) seed() {
	e.t.Helper()
	a := adminUser
	for _, d := range []string{"example.com", "spare.example"} {
		e.must(a, 201, "POST", "/domains", map[string]any{"name": d})
	}
	for _, m := range []map[string]any{
		{"address": "boss@example.com", "displayName": "Boss"},
		{"address": "ana@example.com", "displayName": "Ana Lim", "forwardTo": []string{"ana@corp.example"}},
		{"address": "carl@example.com"},
		{"address": "spare@example.com"},
	} {
		e.must(a, 201, "POST", "/mailboxes", m)
	}
	e.must(a, 201, "POST", "/groups", map[string]any{"id": "sales", "name": "Sales", "type": "department",
		"addresses": []string{"sales@example.com"}, "owners": []string{"boss@example.com"}})
	e.must(a, 201, "POST", "/groups", map[string]any{"id": "other", "name": "Other", "type": "project"})
	e.must(a, 201, "POST", "/groups", map[string]any{"id": "spare", "name": "Spare"})
	e.must(a, 201, "POST", "/groups/sales/members", map[string]any{"kind": "mailbox", "address": "ana@example.com"})
	e.must(a, 201, "POST", "/groups/sales/members", map[string]any{"kind": "external", "address": "x@partner.example"})
	e.must(a, 201, "POST", "/aliases", map[string]any{"address": "info@example.com", "target": "sales@example.com"})
	e.must(a, 201, "POST", "/aliases", map[string]any{"address": "spare-alias@example.com", "target": "ana@example.com"})
	e.must(a, 201, "POST", "/routing/rules", map[string]any{"id": "vip", "name": "VIP", "priority": 1,
		"when":    []any{map[string]any{"type": "senderDomain", "pattern": "vip.example"}},
		"actions": []any{map[string]any{"type": "priority", "value": "urgent"}}})
	// A forwarding destination that bounced hard, and so is suspended.
	e.hold("h-approve")
	e.hold("h-reject")
	e.archived(archivedRecord("m-seed", time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)))
	e.record(destinations.Outcome{Destination: "gone@partner.example", Type: destinations.TypeBounce,
		At: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), SESMessageID: "ses-seed-1", FeedbackID: "fb-seed-1",
		BounceType: destinations.BouncePermanent, BounceSubType: "General", Status: "5.1.1"})
}

// rfc822 is a request body sent as message/rfc822.
type rfc822 []byte

const explainMessage = "From: Kim <kim@client.example>\r\nTo: sales@example.com\r\nSubject: Invoice 42\r\n" +
	"Message-ID: <explain-1@client.example>\r\n\r\nPlease pay.\r\n"

// endpoint is one request in the role matrix, with the roles allowed to make it and the status
// they get. Requests run in order against one seeded directory per role, so later ones may rely on
// earlier ones having failed or succeeded only for the roles they list; deletions come last.
type endpoint struct {
	route   string // the handler route the request exercises
	method  string
	path    string
	body    any
	allowed []string // roles; "*" for every authenticated caller, "public" for no token at all
	status  int
}

var matrix = []endpoint{
	{"GET /openapi.yaml", "GET", "/openapi.yaml", nil, []string{"public"}, 200},
	{"GET /me", "GET", "/me", nil, []string{"*"}, 200},
	{"GET /domains", "GET", "/domains", nil, []string{"admin", "auditor"}, 200},
	{"POST /domains", "POST", "/domains", map[string]any{"name": "new.example"}, []string{"admin"}, 201},
	{"GET /domains/{name}", "GET", "/domains/example.com", nil, []string{"admin", "auditor"}, 200},
	{"PATCH /domains/{name}", "PATCH", "/domains/example.com", map[string]any{"unknownRecipients": "drop"}, []string{"admin"}, 200},
	{"GET /mailboxes", "GET", "/mailboxes", nil, []string{"admin", "auditor"}, 200},
	{"POST /mailboxes", "POST", "/mailboxes", map[string]any{"address": "new@example.com"}, []string{"admin"}, 201},
	{"GET /mailboxes/{address}", "GET", "/mailboxes/ana@example.com", nil, []string{"admin", "auditor", "group-manager", "employee"}, 200},
	{"PATCH /mailboxes/{address}", "PATCH", "/mailboxes/ana@example.com", map[string]any{"displayName": "Ana L"}, []string{"admin", "employee"}, 200},
	{"GET /aliases", "GET", "/aliases", nil, []string{"admin", "auditor"}, 200},
	{"POST /aliases", "POST", "/aliases", map[string]any{"address": "hello@example.com", "target": "sales@example.com"}, []string{"admin"}, 201},
	{"GET /aliases/{address}", "GET", "/aliases/info@example.com", nil, []string{"admin", "auditor"}, 200},
	{"PATCH /aliases/{address}", "PATCH", "/aliases/info@example.com", map[string]any{"target": "ana@example.com"}, []string{"admin"}, 200},
	{"GET /groups", "GET", "/groups", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"POST /groups", "POST", "/groups", map[string]any{"name": "New team", "type": "project"}, []string{"admin"}, 201},
	{"GET /groups/{id}", "GET", "/groups/sales", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"PATCH /groups/{id}", "PATCH", "/groups/sales", map[string]any{"description": "Sales, APAC"}, []string{"admin", "group-manager"}, 200},
	{"GET /groups/{id}/members", "GET", "/groups/sales/members", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"POST /groups/{id}/members", "POST", "/groups/sales/members", map[string]any{"kind": "mailbox", "address": "carl@example.com"}, []string{"admin", "group-manager"}, 201},
	{"DELETE /groups/{id}/members/{member}", "DELETE", "/groups/sales/members/external:x@partner.example", nil, []string{"admin", "group-manager"}, 204},
	{"GET /groups/{id}/expanded", "GET", "/groups/sales/expanded", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /audit", "GET", "/audit", nil, []string{"admin", "auditor"}, 200},
	{"GET /directory/export", "GET", "/directory/export", nil, []string{"admin", "auditor"}, 200},
	{"GET /directory/export", "GET", "/directory/export?format=csv&kind=mailboxes", nil, []string{"admin", "auditor"}, 200},
	{"POST /directory/import", "POST", "/directory/import?dryRun=true", map[string]any{"mailboxes": []any{map[string]any{"address": "imported@example.com"}}}, []string{"admin"}, 200},
	{"GET /reports/groups", "GET", "/reports/groups", nil, []string{"admin", "auditor"}, 200},
	{"GET /routing/rules", "GET", "/routing/rules", nil, []string{"admin", "auditor"}, 200},
	{"POST /routing/rules", "POST", "/routing/rules", map[string]any{"id": "invoices", "name": "Invoices", "priority": 10,
		"when":    []any{map[string]any{"type": "subject", "pattern": "(?i)invoice"}},
		"actions": []any{map[string]any{"type": "label", "value": "invoice"}}}, []string{"admin"}, 201},
	{"GET /routing/rules/{id}", "GET", "/routing/rules/vip", nil, []string{"admin", "auditor"}, 200},
	{"PATCH /routing/rules/{id}", "PATCH", "/routing/rules/vip", map[string]any{"priority": 5}, []string{"admin"}, 200},
	{"POST /routing/explain", "POST", "/routing/explain?to=sales@example.com", rfc822(explainMessage), []string{"admin", "auditor"}, 200},
	// Automatic replies. Nothing is set in the seeded directory, so each GET comes before the
	// PUT and finds nothing (404) for the roles that may read it; the PATCH after the PUT
	// succeeds for the roles whose PUT did.
	{"GET /mailboxes/{address}/out-of-office", "GET", "/mailboxes/ana@example.com/out-of-office", nil, []string{"admin", "auditor", "employee"}, 404},
	{"PUT /mailboxes/{address}/out-of-office", "PUT", "/mailboxes/ana@example.com/out-of-office", map[string]any{"enabled": true, "end": "2026-12-24"}, []string{"admin", "employee"}, 201},
	{"PATCH /mailboxes/{address}/out-of-office", "PATCH", "/mailboxes/ana@example.com/out-of-office", map[string]any{"audience": "internal"}, []string{"admin", "employee"}, 200},
	{"GET /mailboxes/{address}/closed-notice", "GET", "/mailboxes/carl@example.com/closed-notice", nil, []string{"admin", "auditor"}, 404},
	{"PUT /mailboxes/{address}/closed-notice", "PUT", "/mailboxes/carl@example.com/closed-notice", map[string]any{"enabled": true, "successor": "boss@example.com"}, []string{"admin"}, 201},
	{"PATCH /mailboxes/{address}/closed-notice", "PATCH", "/mailboxes/carl@example.com/closed-notice", map[string]any{"forward": true}, []string{"admin"}, 200},
	{"GET /groups/{id}/acknowledgement", "GET", "/groups/sales/acknowledgement", nil, []string{"admin", "auditor", "group-manager"}, 404},
	{"PUT /groups/{id}/acknowledgement", "PUT", "/groups/sales/acknowledgement", map[string]any{"enabled": true, "promiseHours": 8}, []string{"admin", "group-manager"}, 201},
	{"PATCH /groups/{id}/acknowledgement", "PATCH", "/groups/sales/acknowledgement", map[string]any{"language": "ms"}, []string{"admin", "group-manager"}, 200},
	{"GET /autoreplies/templates", "GET", "/autoreplies/templates?kind=out-of-office", nil, []string{"admin", "auditor", "group-manager", "employee"}, 200},
	{"GET /autoreplies/rules", "GET", "/autoreplies/rules", nil, []string{"admin", "auditor", "group-manager", "employee"}, 200},
	{"POST /autoreplies/preview", "POST", "/autoreplies/preview?to=sales@example.com", rfc822(explainMessage), []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /destinations", "GET", "/destinations?suspended=true", nil, []string{"admin", "auditor"}, 200},
	{"GET /destinations/{address}", "GET", "/destinations/gone@partner.example", nil, []string{"admin", "auditor"}, 200},
	{"GET /destinations/{address}/outcomes", "GET", "/destinations/gone@partner.example/outcomes", nil, []string{"admin", "auditor"}, 200},
	{"DELETE /destinations/{address}/suspension", "DELETE", "/destinations/gone@partner.example/suspension", nil, []string{"admin"}, 204},
	{"GET /archive/search", "GET", "/archive/search?mailbox=sales@example.com&from=2026-11-01", nil, []string{"admin", "auditor"}, 200},
	{"GET /archive/messages/{id}", "GET", "/archive/messages/m-seed", nil, []string{"admin", "auditor"}, 200},
	{"GET /moderation", "GET", "/moderation?group=sales", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /moderation/{id}", "GET", "/moderation/h-approve", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /moderation/{id}/decide", "GET", "/moderation/h-reject/decide?action=reject&token=1.forged", nil, []string{"public"}, 403},
	{"POST /moderation/{id}/decide", "POST", "/moderation/h-reject/decide?action=reject&token=1.forged", nil, []string{"public"}, 403},
	{"GET /originals/{ref}", "GET", "/originals/YXJjaGl2ZS94LmVtbA?token=1.forged", nil, []string{"public"}, 403},
	{"POST /moderation/{id}/approve", "POST", "/moderation/h-approve/approve", nil, []string{"admin", "group-manager"}, 200},
	{"POST /moderation/{id}/reject", "POST", "/moderation/h-reject/reject", map[string]any{"reason": "Not for this group"}, []string{"admin", "group-manager"}, 200},
	// SLA. Nothing is seeded: the GET of one calendar or policy comes before its POST and finds
	// nothing (404) for the roles that may read it. The matrix sends JSON, so an admin importing
	// holidays gets as far as the body's media type (415; TestSLACalendars imports a feed). No
	// conversation exists: reading, pausing or resuming one is 404 for those who may see every
	// queue, and 403 for everyone else as for one they may not see.
	{"GET /calendars/{id}", "GET", "/calendars/office", nil, []string{"admin", "auditor"}, 404},
	{"POST /calendars", "POST", "/calendars", map[string]any{"id": "office", "timeZone": "Asia/Kuala_Lumpur",
		"hours": map[string]any{"mon": []string{"09:00-17:00"}, "tue": []string{"09:00-17:00"}}}, []string{"admin"}, 201},
	{"GET /calendars", "GET", "/calendars", nil, []string{"admin", "auditor"}, 200},
	{"PATCH /calendars/{id}", "PATCH", "/calendars/office", map[string]any{"holidays": []string{"2026-12-25"}}, []string{"admin"}, 200},
	{"POST /calendars/{id}/holidays", "POST", "/calendars/office/holidays", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", []string{"admin"}, 415},
	{"GET /sla/policies/{id}", "GET", "/sla/policies/sales", nil, []string{"admin", "auditor"}, 404},
	{"POST /sla/policies", "POST", "/sla/policies", map[string]any{"name": "Sales", "calendar": "office", "firstResponseHours": 8,
		"groups": []string{"sales"}, "mailboxes": []string{"ana@example.com"}}, []string{"admin"}, 201},
	{"GET /sla/policies", "GET", "/sla/policies", nil, []string{"admin", "auditor"}, 200},
	{"PATCH /sla/policies/{id}", "PATCH", "/sla/policies/sales", map[string]any{"warnPercent": 50}, []string{"admin"}, 200},
	{"GET /conversations", "GET", "/conversations?queue=group:sales", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /conversations", "GET", "/conversations?queue=mailbox:ana@example.com&state=waiting", nil, []string{"admin", "auditor", "employee"}, 200},
	{"GET /conversations/{id}", "GET", "/conversations/C0000NONE", nil, []string{"admin", "auditor"}, 404},
	{"POST /conversations/{id}/pause", "POST", "/conversations/C0000NONE/pause", nil, []string{"admin"}, 404},
	{"POST /conversations/{id}/resume", "POST", "/conversations/C0000NONE/resume", nil, []string{"admin"}, 404},
	{"GET /reports/sla", "GET", "/reports/sla?queue=group:sales&from=2026-11-01&to=2026-12-01", nil, []string{"admin", "auditor", "group-manager"}, 200},
	{"GET /reports/sla", "GET", "/reports/sla?queue=mailbox:ana@example.com", nil, []string{"admin", "auditor", "employee"}, 200},
	{"DELETE /mailboxes/{address}/out-of-office", "DELETE", "/mailboxes/ana@example.com/out-of-office", nil, []string{"admin", "employee"}, 204},
	{"DELETE /mailboxes/{address}/closed-notice", "DELETE", "/mailboxes/carl@example.com/closed-notice", nil, []string{"admin"}, 204},
	{"DELETE /groups/{id}/acknowledgement", "DELETE", "/groups/sales/acknowledgement", nil, []string{"admin", "group-manager"}, 204},
	{"DELETE /routing/rules/{id}", "DELETE", "/routing/rules/vip", nil, []string{"admin"}, 204},
	{"DELETE /sla/policies/{id}", "DELETE", "/sla/policies/sales", nil, []string{"admin"}, 204},
	{"DELETE /calendars/{id}", "DELETE", "/calendars/office", nil, []string{"admin"}, 204},
	{"DELETE /aliases/{address}", "DELETE", "/aliases/spare-alias@example.com", nil, []string{"admin"}, 204},
	{"DELETE /groups/{id}", "DELETE", "/groups/spare", nil, []string{"admin"}, 204},
	{"DELETE /mailboxes/{address}", "DELETE", "/mailboxes/spare@example.com", nil, []string{"admin"}, 204},
	{"DELETE /domains/{name}", "DELETE", "/domains/spare.example", nil, []string{"admin"}, 204},
}

// TestRoleMatrix runs every endpoint as every role: the roles listed get the endpoint's status, every
// other role gets 403 and changes nothing, and a request without a token gets 401.
func TestRoleMatrix(t *testing.T) {
	roles := map[string]apigw.Claims{
		"admin": adminUser, "group-manager": managerUser, "auditor": auditorUser,
		"employee": employeeAna, "no role": nobody, "no token": {},
	}
	for name, who := range roles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.seed()
			for _, ep := range matrix {
				r := e.do(who, ep.method, ep.path, ep.body)
				want := http.StatusForbidden
				switch {
				case slices.Contains(ep.allowed, "public"):
					want = ep.status
				case name == "no token":
					want = http.StatusUnauthorized
				case slices.Contains(ep.allowed, "*"), slices.Contains(ep.allowed, name):
					want = ep.status
				}
				if r.status != want {
					t.Errorf("%s %s as %s: status %d, want %d: %s", ep.method, ep.path, name, r.status, want, r.body)
				}
			}
			if name == "admin" {
				return
			}
			// Nothing a refused caller tried is in the audit log: only the seeding admin changed anything.
			audit := e.must(adminUser, 200, "GET", "/audit?limit=1000", nil).json(t)
			for _, it := range audit["items"].([]any) {
				entry := it.(map[string]any)
				actor := entry["actor"].(map[string]any)["subject"]
				if actor != adminUser.Subject && !slices.Contains(allowedSomewhere(name), entry["action"].(string)) {
					t.Errorf("audit entry by %v for %v: a refused change was recorded", actor, entry["action"])
				}
			}
		})
	}
}

// allowedSomewhere lists the audited actions a non-admin role is allowed in the matrix.
func allowedSomewhere(role string) []string {
	switch role {
	case "group-manager":
		return []string{"group.update", "group.add-member", "group.remove-member", "hold.approve", "hold.reject",
			"acknowledgement.create", "acknowledgement.update", "acknowledgement.delete"}
	case "employee":
		return []string{"mailbox.update", "out-of-office.create", "out-of-office.update", "out-of-office.delete"}
	case "auditor":
		return []string{"archive.search", "message.read"}
	}
	return nil
}

// TestMatrixCoversEveryRoute fails when a route is added without a row in the role matrix, or when
// the handler's routes and api/openapi.yaml's operations differ.
func TestMatrixCoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	routes := e.handler.Routes()
	for _, r := range routes {
		if !slices.ContainsFunc(matrix, func(ep endpoint) bool { return ep.route == r }) {
			t.Errorf("route %s has no row in the role matrix", r)
		}
	}
	ops := apitest.New(t).Operations()
	got, want := slices.Sorted(slices.Values(routes)), ops
	if !slices.Equal(got, want) {
		t.Errorf("handler routes and documented operations differ:\nroutes: %q\nopenapi: %q", got, want)
	}
}

// TestOwnership checks the limits inside a role: group managers act on the groups they own,
// employees on their own mailbox.
func TestOwnership(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.must(adminUser, 201, "POST", "/groups", map[string]any{"id": "boss-project", "name": "Boss project", "owners": []string{"boss@example.com"}})
	tests := []struct {
		name   string
		who    apigw.Claims
		method string
		path   string
		body   any
		want   int
	}{
		{"manager reads a group they do not own", managerUser, "GET", "/groups/other", nil, 403},
		{"manager asks for a group that does not exist", managerUser, "GET", "/groups/nope", nil, 403},
		{"admin asks for a group that does not exist", adminUser, "GET", "/groups/nope", nil, 404},
		{"manager changes the owners", managerUser, "PATCH", "/groups/sales", map[string]any{"owners": []string{"carl@example.com"}}, 403},
		{"manager changes the addresses", managerUser, "PATCH", "/groups/sales", map[string]any{"addresses": []string{"team@example.com"}}, 403},
		{"manager nests a group they do not own", managerUser, "POST", "/groups/sales/members", map[string]any{"kind": "group", "group": "other"}, 403},
		{"manager nests a group they own", managerUser, "POST", "/groups/sales/members", map[string]any{"kind": "group", "group": "boss-project"}, 201},
		{"manager reads a mailbox outside their groups", managerUser, "GET", "/mailboxes/carl@example.com", nil, 403},
		{"manager deletes their group", managerUser, "DELETE", "/groups/sales", nil, 403},
		{"employee reads another mailbox", employeeAna, "GET", "/mailboxes/boss@example.com", nil, 403},
		{"employee changes their forwarding", employeeAna, "PATCH", "/mailboxes/ana@example.com", map[string]any{"forwardTo": []string{"me@gmail.example"}}, 403},
		{"employee closes their mailbox", employeeAna, "PATCH", "/mailboxes/ana@example.com", map[string]any{"status": "closed"}, 403},
		{"employee changes their time zone", employeeAna, "PATCH", "/mailboxes/ana@example.com", map[string]any{"timeZone": "Asia/Ho_Chi_Minh"}, 200},
		{"employee changes another mailbox", employeeAna, "PATCH", "/mailboxes/carl@example.com", map[string]any{"displayName": "Carl"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.who, tt.method, tt.path, tt.body)
			if r.status != tt.want {
				t.Errorf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}
	// A manager's group list is their own groups only.
	list := e.must(managerUser, 200, "GET", "/groups", nil).json(t)
	var ids []string
	for _, g := range list["items"].([]any) {
		ids = append(ids, g.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	if want := []string{"boss-project", "sales"}; !slices.Equal(ids, want) {
		t.Errorf("manager's groups = %q, want %q", ids, want)
	}
}

// TestScopes checks that a token's scopes narrow its roles: an admin token with only the read scope
// cannot change anything.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	e.seed()
	reader := adminUser
	reader.Scope = "mailroom/read"
	e.must(reader, 200, "GET", "/domains", nil)
	if r := e.do(reader, "POST", "/domains", map[string]any{"name": "scoped.example"}); r.status != 403 {
		t.Errorf("POST with a read-only token: status %d, want 403", r.status)
	}
	writer := adminUser
	writer.Scope = "mailroom/read mailroom/write"
	e.must(writer, 201, "POST", "/domains", map[string]any{"name": "scoped.example"})
}

// TestLambdaEvent calls the handler the way Lambda does, without the local front: a request without
// verified claims is refused, and a base64 body (API Gateway encodes merge-patch+json) is decoded.
func TestLambdaEvent(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/me",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/me"}},
	}
	res, err := e.handler.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || res.Headers["content-type"] != "application/problem+json" {
		t.Errorf("no claims: status %d %q, want 401 problem+json", res.StatusCode, res.Headers["content-type"])
	}

	ev.RawPath, ev.RequestContext.HTTP.Method = "/mailboxes/carl@example.com", "PATCH"
	ev.Headers = map[string]string{"content-type": "application/merge-patch+json"}
	ev.Body, ev.IsBase64Encoded = "eyJkaXNwbGF5TmFtZSI6IkNhcmwgVGFuIn0=", true // {"displayName":"Carl Tan"}
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
			Claims: map[string]string{"sub": "u-admin", "mailroom:roles": "[admin]"},
		},
	}
	res, err = e.handler.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.Contains(res.Body, `"displayName":"Carl Tan"`) {
		t.Errorf("base64 patch: status %d body %s, want 200 with the new name", res.StatusCode, res.Body)
	}
}

// TestDestinationsAPI reads what became of mail sent to two destinations, one that bounced hard
// and one whose recipient complained, pages through a history, and reinstates one of them.
func TestDestinationsAPI(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	const ana, kim = "ana.lim@corp.example", "kim@client.example"
	n := 0
	outcome := func(dest string, typ destinations.Type, after time.Duration, bounceType string) destinations.Outcome {
		n++
		o := destinations.Outcome{Destination: dest, Type: typ, At: t0.Add(after), SESMessageID: fmt.Sprintf("ses-%d", n), Via: "sales"}
		if typ == destinations.TypeBounce || typ == destinations.TypeComplaint {
			o.FeedbackID = fmt.Sprintf("fb-%d", n)
		}
		if bounceType != "" {
			o.BounceType, o.BounceSubType, o.Status, o.Diagnostic = bounceType, "General", "5.1.1", "smtp; 550 5.1.1 user unknown"
		}
		return o
	}
	e.record(
		outcome(ana, destinations.TypeSend, 0, ""),
		outcome(ana, destinations.TypeDelivery, time.Minute, ""),
		outcome(ana, destinations.TypeSend, time.Hour, ""),
		outcome(ana, destinations.TypeDelivery, time.Hour+time.Minute, ""),
		outcome(ana, destinations.TypeBounce, 2*time.Hour, destinations.BouncePermanent),
		outcome(kim, destinations.TypeSend, 30*time.Minute, ""),
		outcome(kim, destinations.TypeDelivery, 31*time.Minute, ""),
		outcome(kim, destinations.TypeComplaint, 3*time.Hour, ""),
	)

	suspended := func(query string) ([]string, string) {
		t.Helper()
		var page struct {
			Items []destinations.Status
			Next  string
		}
		if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/destinations?suspended=true"+query, nil).body, &page); err != nil {
			t.Fatal(err)
		}
		var addrs []string
		for _, st := range page.Items {
			if !st.Suspended {
				t.Errorf("listed as suspended: %+v", st)
			}
			addrs = append(addrs, st.Address)
		}
		return addrs, page.Next
	}
	first, next := suspended("&limit=1")
	if want := []string{ana}; !slices.Equal(first, want) || next == "" {
		t.Fatalf("first page = %q, next %q; want %q and a cursor", first, next, want)
	}
	if second, next := suspended("&limit=1&cursor=" + next); !slices.Equal(second, []string{kim}) || next != "" {
		t.Errorf("second page = %q, next %q; want [%s] and no cursor", second, next, kim)
	}

	status := func(addr string) destinations.Status {
		t.Helper()
		var st destinations.Status
		if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/destinations/"+addr, nil).body, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// The path is normalised as outcomes are kept.
	st := status("Ana.Lim@CORP.example")
	if !st.Suspended || st.Reason != destinations.ReasonHardBounce || st.Cause == nil || st.Cause.BounceType != destinations.BouncePermanent ||
		st.Sends != 2 || st.Deliveries != 2 || st.Bounces != 1 || st.LastOutcome == nil || !st.LastOutcome.At.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("status of %s = %+v", ana, st)
	}
	if st := status(kim); !st.Suspended || st.Reason != destinations.ReasonComplaint || st.Complaints != 1 || st.Deliveries != 1 {
		t.Errorf("status of %s = %+v", kim, st)
	}

	history := func(query string) ([]time.Duration, string) {
		t.Helper()
		var page struct {
			Items []destinations.Outcome
			Next  string
		}
		if err := json.Unmarshal(e.must(adminUser, 200, "GET", "/destinations/"+ana+"/outcomes"+query, nil).body, &page); err != nil {
			t.Fatal(err)
		}
		var ats []time.Duration
		for _, o := range page.Items {
			ats = append(ats, o.At.Sub(t0))
		}
		return ats, page.Next
	}
	var all []time.Duration
	for cursor, pages := "", 0; ; pages++ {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		ats, next := history(q)
		if len(ats) > 2 || pages > 3 {
			t.Fatalf("page %d has %d outcomes", pages, len(ats))
		}
		all = append(all, ats...)
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []time.Duration{2 * time.Hour, time.Hour + time.Minute, time.Hour, time.Minute, 0}; !slices.Equal(all, want) {
		t.Errorf("history, newest first = %v, want %v", all, want)
	}
	ranged, _ := history("?from=" + t0.Add(time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour+time.Minute).Format(time.RFC3339))
	if want := []time.Duration{time.Hour + time.Minute, time.Hour}; !slices.Equal(ranged, want) {
		t.Errorf("history in a range (ends included) = %v, want %v", ranged, want)
	}

	// Reinstating: admins only, once, and audited.
	e.must(auditorUser, 403, "DELETE", "/destinations/"+ana+"/suspension", nil)
	e.must(adminUser, 412, "DELETE", "/destinations/"+ana+"/suspension", nil, "If-Match", `"1"`)
	e.must(adminUser, 204, "DELETE", "/destinations/"+ana+"/suspension", nil)
	if st := status(ana); st.Suspended || st.Reason != "" || st.Cause != nil || st.ReinstatedBy != adminUser.Email || st.ReinstatedAt.IsZero() || st.Bounces != 1 {
		t.Errorf("status after reinstatement = %+v", st)
	}
	if got, _ := suspended(""); !slices.Equal(got, []string{kim}) {
		t.Errorf("suspended after reinstating %s = %q, want [%s]", ana, got, kim)
	}
	r := e.do(adminUser, "DELETE", "/destinations/"+ana+"/suspension", nil)
	if r.status != 409 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("second reinstatement: status %d, want a 409 problem: %s", r.status, r.body)
	}
	e.must(adminUser, 404, "DELETE", "/destinations/nobody@nowhere.example/suspension", nil)
	e.must(adminUser, 404, "GET", "/destinations/nobody@nowhere.example", nil)

	audit := e.must(auditorUser, 200, "GET", "/audit?resource=destination:"+ana, nil).json(t)["items"].([]any)
	if len(audit) != 1 {
		t.Fatalf("audit entries for destination:%s = %v, want one", ana, audit)
	}
	entry := audit[0].(map[string]any)
	before, _ := entry["before"].(map[string]any)
	after, _ := entry["after"].(map[string]any)
	if entry["action"] != "destination.reinstate" || entry["actor"].(map[string]any)["subject"] != adminUser.Subject ||
		before["reason"] != "hard-bounce" || after["suspended"] != false || after["reinstatedBy"] != adminUser.Email {
		t.Errorf("audit entry = %v", entry)
	}

	for _, tt := range []struct {
		name, method, path string
		status             int
		field              string
	}{
		{"not an address", "GET", "/destinations/not-an-address", 400, "address"},
		{"not an address, reinstated", "DELETE", "/destinations/ana@/suspension", 400, "address"},
		{"the full listing", "GET", "/destinations", 400, "suspended"},
		{"suspended=false", "GET", "/destinations?suspended=false", 400, "suspended"},
		{"from not RFC 3339", "GET", "/destinations/" + ana + "/outcomes?from=yesterday", 400, "from"},
		{"range backwards", "GET", "/destinations/" + ana + "/outcomes?from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z", 400, "to"},
		{"limit over 1000", "GET", "/destinations/" + ana + "/outcomes?limit=5000", 400, "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(adminUser, tt.method, tt.path, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := r.json(t)["field"]; got != tt.field {
				t.Errorf("field %v, want %q", got, tt.field)
			}
		})
	}
}

// TestDestinationsUnconfigured: a handler built without a state table still has the routes, and
// answers them 503.
func TestDestinationsUnconfigured(t *testing.T) {
	h, err := admin.New(admin.Config{DirectoryTable: "unused", AuditTable: "unused"}, devstacktest.Clients(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/destinations", RawQueryString: "suspended=true",
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/destinations"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
					Claims: map[string]string{"sub": "u-admin", "mailroom:roles": "[admin]"},
				},
			},
		},
	}
	res, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.Headers["content-type"] != "application/problem+json" {
		t.Errorf("status %d %q, want a 503 problem: %s", res.StatusCode, res.Headers["content-type"], res.Body)
	}
}

// TestModerationDecisionsAreAudited: approving and rejecting are recorded once each, by who
// decided; approving an approved hold again records nothing.
func TestModerationDecisionsAreAudited(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.must(managerUser, 200, "POST", "/moderation/h-approve/approve", nil)
	e.must(managerUser, 200, "POST", "/moderation/h-approve/approve", nil)
	e.must(adminUser, 200, "POST", "/moderation/h-reject/reject", map[string]any{"reason": "Off topic"})
	got := map[string]string{}
	for _, res := range []string{"hold:h-approve", "hold:h-reject"} {
		audit := e.must(auditorUser, 200, "GET", "/audit?resource="+res, nil).json(t)
		items := audit["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("%s: %d audit entries, want 1", res, len(items))
		}
		entry := items[0].(map[string]any)
		got[res] = entry["action"].(string) + " by " + entry["actor"].(map[string]any)["subject"].(string)
	}
	want := map[string]string{"hold:h-approve": "hold.approve by " + managerUser.Subject, "hold:h-reject": "hold.reject by " + adminUser.Subject}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
