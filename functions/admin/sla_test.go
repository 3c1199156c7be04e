package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/sla"
)

// wantProblem checks that r is a problem of status naming field.
func wantProblem(t *testing.T, r response, status int, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if got := r.json(t)["field"]; field != "" && got != field {
		t.Errorf("field = %v, want %q: %s", got, field, r.body)
	}
}

const officeCalendar = `{"id": "office", "name": "KL office", "timeZone": "Asia/Kuala_Lumpur",
	"hours": {"mon": ["13:30-18:00", "09:00-12:30"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"], "thu": ["09:00-17:00"], "fri": ["09:00-12:00"]},
	"holidays": ["2026-12-25", "2026-08-31", "2026-12-25"]}`

// TestSLAPolicies creates, reads, changes and removes SLA policies, and refuses invalid ones
// naming the field at fault.
func TestSLAPolicies(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.must(adminUser, 201, "POST", "/calendars", officeCalendar)

	r := e.must(adminUser, 201, "POST", "/sla/policies", map[string]any{
		"name": "Sales support", "calendar": "office", "firstResponseHours": 8, "nextResponseHours": 16,
		"escalation": []string{"Boss@Example.COM"}, "groups": []string{"sales", "other"}, "holdingReply": true,
	}, "Idempotency-Key", "policy-1")
	if loc, tag := r.header.Get("Location"), r.header.Get("ETag"); loc != "/sla/policies/sales-support" || tag != `"1"` {
		t.Errorf("Location %q, ETag %q; want /sla/policies/sales-support and \"1\"", loc, tag)
	}
	var p sla.Policy
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != "sales-support" || p.Name != "Sales support" || p.Calendar != "office" || p.FirstResponseHours != 8 ||
		!slices.Equal(p.Escalation, []string{"boss@example.com"}) || !slices.Equal(p.Groups, []string{"other", "sales"}) || !p.HoldingReply {
		t.Errorf("created policy = %+v", p)
	}
	// The same key again is answered from memory; a second create of the id is a conflict.
	again := e.must(adminUser, 201, "POST", "/sla/policies", map[string]any{
		"name": "Sales support", "calendar": "office", "firstResponseHours": 8, "nextResponseHours": 16,
		"escalation": []string{"Boss@Example.COM"}, "groups": []string{"sales", "other"}, "holdingReply": true,
	}, "Idempotency-Key", "policy-1")
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a repeated create was not replayed: %v", again.header)
	}
	wantProblem(t, e.do(adminUser, "POST", "/sla/policies", map[string]any{"id": "sales-support", "firstResponseHours": 1}), 409, "")
	e.must(adminUser, 201, "POST", "/sla/policies", map[string]any{"id": "vip", "firstResponseHours": 2, "mailboxes": []string{"Ana@Example.com"}})

	var list struct{ Items []sla.Policy }
	if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/sla/policies", nil).body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list.Items {
		ids = append(ids, p.ID)
	}
	if want := []string{"sales-support", "vip"}; !slices.Equal(ids, want) {
		t.Errorf("listed %q, want %q", ids, want)
	}
	if got := e.must(auditorUser, 200, "GET", "/sla/policies/vip", nil).json(t); got["name"] != "vip" || got["mailboxes"].([]any)[0] != "ana@example.com" {
		t.Errorf("vip = %v: the name defaults to the id, mailboxes are normalised", got)
	}

	r = e.must(adminUser, 200, "PATCH", "/sla/policies/sales-support", map[string]any{"firstResponseHours": 4, "groups": []string{"sales"}, "nextResponseHours": nil}, "If-Match", `"1"`)
	if got := r.json(t); r.header.Get("ETag") != `"2"` || got["firstResponseHours"] != 4.0 || got["nextResponseHours"] != nil || len(got["groups"].([]any)) != 1 {
		t.Errorf("patched: ETag %s, %v", r.header.Get("ETag"), got)
	}
	wantProblem(t, e.do(adminUser, "PATCH", "/sla/policies/sales-support", map[string]any{"warnPercent": 50}, "If-Match", `"1"`), 412, "")

	for _, tt := range []struct {
		name  string
		body  string
		field string
	}{
		{"no target", `{"id": "x"}`, "firstResponseHours"},
		{"negative target", `{"id": "x", "firstResponseHours": -1}`, "firstResponseHours"},
		{"a year and more", `{"id": "x", "firstResponseHours": 2401}`, "firstResponseHours"},
		{"target as text", `{"id": "x", "firstResponseHours": "8h"}`, "firstResponseHours"},
		{"negative next target", `{"id": "x", "firstResponseHours": 8, "nextResponseHours": -2}`, "nextResponseHours"},
		{"warning at 100%", `{"id": "x", "firstResponseHours": 8, "warnPercent": 100}`, "warnPercent"},
		{"unknown calendar", `{"id": "x", "firstResponseHours": 8, "calendar": "mars"}`, "calendar"},
		{"unknown group", `{"id": "x", "firstResponseHours": 8, "groups": ["ghosts"]}`, "groups[0]"},
		{"unknown mailbox", `{"id": "x", "firstResponseHours": 8, "mailboxes": ["ana@example.com", "ghost@example.com"]}`, "mailboxes[1]"},
		{"escalation not an address", `{"id": "x", "firstResponseHours": 8, "escalation": ["boss"]}`, "escalation[0]"},
		{"id with capitals", `{"id": "Sales", "firstResponseHours": 8}`, "id"},
		{"neither id nor name", `{"firstResponseHours": 8}`, "name"},
		{"unknown field", `{"id": "x", "firstResponseHours": 8, "target": 8}`, "target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, e.do(adminUser, "POST", "/sla/policies", tt.body), 400, tt.field)
		})
	}
	wantProblem(t, e.do(adminUser, "PATCH", "/sla/policies/vip", map[string]any{"groups": []string{"sales", "nope"}}), 400, "groups[1]")
	wantProblem(t, e.do(adminUser, "PATCH", "/sla/policies/vip", map[string]any{"id": "other"}), 400, "id")
	e.must(adminUser, 404, "GET", "/sla/policies/nope", nil)

	// A calendar a policy runs on stays until no policy does.
	wantProblem(t, e.do(adminUser, "DELETE", "/calendars/office", nil), 409, "")
	e.must(adminUser, 204, "DELETE", "/sla/policies/sales-support", nil, "If-Match", `"2"`)
	e.must(adminUser, 404, "GET", "/sla/policies/sales-support", nil)
	e.must(adminUser, 204, "DELETE", "/calendars/office", nil)

	want := []string{"sla-policy.create by u-admin", "sla-policy.update by u-admin", "sla-policy.delete by u-admin"}
	if got := e.auditActions("sla-policy:sales-support"); !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
}

// holidayFeed is a small national feed: a yearly all-day holiday, a one-off one and a
// cancelled event.
const holidayFeed = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mailroom test//EN\r\n" +
	"BEGIN:VEVENT\r\nUID:christmas@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20251225\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:deepavali@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261108\r\nDTEND;VALUE=DATE:20261110\r\nSUMMARY:Deepavali\r\nEND:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:picnic@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260704\r\nSTATUS:CANCELLED\r\nSUMMARY:Picnic\r\nEND:VEVENT\r\n" +
	"END:VCALENDAR\r\n"

// TestSLACalendars creates and changes business calendars, refuses invalid ones naming the
// field, and imports the holidays of an iCalendar feed.
func TestSLACalendars(t *testing.T) {
	e := newEnv(t)
	r := e.must(adminUser, 201, "POST", "/calendars", officeCalendar)
	var c sla.CalendarSetting
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Hours["mon"], []string{"09:00-12:30", "13:30-18:00"}) || !slices.Equal(c.Holidays, []string{"2026-08-31", "2026-12-25"}) ||
		c.Name != "KL office" || r.header.Get("Location") != "/calendars/office" {
		t.Errorf("stored calendar = %+v: ranges sorted, holidays sorted and unique", c)
	}
	e.must(adminUser, 201, "POST", "/calendars", `{"name": "Night shift", "timeZone": "UTC", "hours": {"sat": ["22:00-24:00"]}}`)
	var list struct{ Items []sla.CalendarSetting }
	if err := json.Unmarshal(e.must(auditorUser, 200, "GET", "/calendars", nil).body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].ID != "night-shift" || list.Items[1].ID != "office" {
		t.Errorf("calendars = %+v", list.Items)
	}
	r = e.must(adminUser, 200, "PATCH", "/calendars/office", map[string]any{"hours": map[string]any{"fri": nil, "sat": []string{"09:00-13:00"}}})
	if got := r.json(t)["hours"].(map[string]any); got["fri"] != nil || got["sat"] == nil || r.header.Get("ETag") != `"2"` {
		t.Errorf("patched hours = %v, ETag %s", got, r.header.Get("ETag"))
	}

	for _, tt := range []struct {
		name, body, field string
	}{
		{"range backwards", `{"id": "x", "timeZone": "UTC", "hours": {"mon": ["17:00-09:00"]}}`, "hours.mon[0]"},
		{"not a range", `{"id": "x", "timeZone": "UTC", "hours": {"mon": ["09:00-17:00", "nine to five"]}}`, "hours.mon[1]"},
		{"not a day", `{"id": "x", "timeZone": "UTC", "hours": {"monday": ["09:00-17:00"]}}`, "hours.monday"},
		{"no hours", `{"id": "x", "timeZone": "UTC", "hours": {}}`, "hours"},
		{"no zone", `{"id": "x", "hours": {"mon": ["09:00-17:00"]}}`, "timeZone"},
		{"unknown zone", `{"id": "x", "timeZone": "Mars/Olympus_Mons", "hours": {"mon": ["09:00-17:00"]}}`, "timeZone"},
		{"holiday not a date", `{"id": "x", "timeZone": "UTC", "hours": {"mon": ["09:00-17:00"]}, "holidays": ["Christmas"]}`, "holidays[0]"},
		{"id with a slash", `{"id": "a/b", "timeZone": "UTC", "hours": {"mon": ["09:00-17:00"]}}`, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, e.do(adminUser, "POST", "/calendars", tt.body), 400, tt.field)
		})
	}

	// Holidays from a feed: merged into those there, sorted and unique.
	ics := []string{"Content-Type", "text/calendar; charset=utf-8"}
	r = e.must(adminUser, 200, "POST", "/calendars/office/holidays?from=2026-01-01&to=2027-12-31", holidayFeed, ics...)
	var imp struct {
		Calendar     sla.CalendarSetting
		Found, Added int
	}
	if err := json.Unmarshal(r.body, &imp); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-08-31", "2026-11-08", "2026-11-09", "2026-12-25", "2027-12-25"}
	if !slices.Equal(imp.Calendar.Holidays, want) || imp.Found != 4 || imp.Added != 3 || r.header.Get("ETag") != `"3"` {
		t.Errorf("import: holidays %q, found %d, added %d, ETag %s; want %q, 4, 3, \"3\"", imp.Calendar.Holidays, imp.Found, imp.Added, r.header.Get("ETag"), want)
	}
	// Again: nothing new, nothing written.
	r = e.must(adminUser, 200, "POST", "/calendars/office/holidays?from=2026-01-01&to=2027-12-31", holidayFeed, ics...)
	if got := r.json(t); got["added"] != 0.0 || r.header.Get("ETag") != `"3"` {
		t.Errorf("second import: %v, ETag %s; want nothing added", got, r.header.Get("ETag"))
	}
	wantProblem(t, e.do(adminUser, "POST", "/calendars/office/holidays?to=2028-12-31", holidayFeed, append(ics, "If-Match", `"2"`)...), 412, "")
	// A later year adds its Christmas.
	r = e.must(adminUser, 200, "POST", "/calendars/office/holidays?from=2028-01-01&to=2028-12-31", holidayFeed, append(ics, "If-Match", `"3"`)...)
	if got := r.json(t); got["added"] != 1.0 {
		t.Errorf("import of 2028: %v", got)
	}
	if got := e.auditActions("calendar:office"); len(got) != 4 || got[0] != "calendar.create by u-admin" || got[3] != "calendar.update by u-admin" {
		t.Errorf("audit = %q, want a create and three updates", got)
	}
	// Without a range: this year and next, in the calendar's zone.
	r = e.must(adminUser, 200, "POST", "/calendars/office/holidays", holidayFeed, ics...)
	year := time.Now().In(time.FixedZone("MYT", 8*3600)).Year()
	if err := json.Unmarshal(r.body, &imp); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{fmt.Sprintf("%d-12-25", year), fmt.Sprintf("%d-12-25", year+1)} {
		if !slices.Contains(imp.Calendar.Holidays, d) {
			t.Errorf("after an import without a range, holidays %q lack %s", imp.Calendar.Holidays, d)
		}
	}

	for _, tt := range []struct {
		name, query, body string
		headers           []string
		status            int
		field             string
	}{
		{"not a feed", "", "hello", ics, 400, "ics"},
		{"a feed without events", "", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", ics, 400, "ics"},
		{"from not a date", "?from=2026", holidayFeed, ics, 400, "from"},
		{"range backwards", "?from=2027-01-01&to=2026-01-01", holidayFeed, ics, 400, "to"},
		{"sent as JSON", "", holidayFeed, nil, 415, "Content-Type"},
		{"over a mebibyte", "", holidayFeed + strings.Repeat("X-PAD:"+strings.Repeat("x", 70)+"\r\n", 16000), ics, 413, "ics"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, e.do(adminUser, "POST", "/calendars/office/holidays"+tt.query, tt.body, tt.headers...), tt.status, tt.field)
		})
	}
	e.must(adminUser, 404, "POST", "/calendars/nope/holidays", holidayFeed, ics...)
	e.must(auditorUser, 403, "POST", "/calendars/office/holidays", holidayFeed, ics...)
}

// slaEnv is the API with a conversation service on a clock the test moves, and the directory
// the role tests use: Boss owns sales, Ana is an employee.
type slaEnv struct {
	*env
	svc *sla.Service
	now time.Time
}

func newSLAEnv(t *testing.T) *slaEnv {
	t.Helper()
	s := &slaEnv{env: newEnv(t)}
	n := 0
	s.svc = &sla.Service{
		Store:    dynamo.NewConversations(s.clients.DynamoDB, s.cfg.StateTable),
		Policies: sla.Policies{Settings: dynamo.NewDirectory(s.clients.DynamoDB, s.cfg.DirectoryTable, "")},
		Now:      func() time.Time { return s.now },
		NewID: func() string {
			n++
			return fmt.Sprintf("CTEST%05d", n)
		},
	}
	s.handler.WithSLA(s.svc)
	s.seed()
	// Monday to Friday, 09:00 to 17:00 UTC: the default calendar.
	s.must(adminUser, 201, "POST", "/sla/policies", map[string]any{"id": "sales", "firstResponseHours": 8,
		"groups": []string{"sales"}, "mailboxes": []string{"ana@example.com"}})
	return s
}

// customer writes to a queue at at, opening a conversation.
func (s *slaEnv) customer(queue, msgID string, at time.Time) sla.Conversation {
	s.t.Helper()
	c, ok, err := s.svc.Received(context.Background(), queue, "", sla.Message{
		MessageID: msgID, From: "kim@client.example", Subject: "Quote " + msgID, At: at,
	}, false)
	if err != nil || !ok {
		s.t.Fatalf("received %s: %v, %v", msgID, ok, err)
	}
	return c
}

// answer is a staff reply to msgID at at.
func (s *slaEnv) answer(msgID string, at time.Time) {
	s.t.Helper()
	if _, err := s.svc.StaffSent(context.Background(), sla.Message{
		MessageID: "re-" + msgID, InReplyTo: []string{msgID}, From: "ana@example.com", At: at,
	}); err != nil {
		s.t.Fatal(err)
	}
}

// conversationJSON is a conversation as the API shows it.
type conversationJSON struct {
	ID                 string
	Queue              string
	State              string
	UsedHours          float64
	Since, Due         time.Time
	FirstResponseHours *float64
	WithinTarget       *bool
	Breached           bool
}

func (s *slaEnv) conversations(query string) []conversationJSON {
	s.t.Helper()
	var page struct{ Items []conversationJSON }
	if err := json.Unmarshal(s.must(adminUser, 200, "GET", "/conversations?"+query, nil).body, &page); err != nil {
		s.t.Fatal(err)
	}
	return page.Items
}

type quietEscalation struct{}

func (quietEscalation) Escalate(context.Context, sla.Conversation, sla.Policy, string) error {
	return nil
}
func (quietEscalation) Hold(context.Context, sla.Conversation, sla.Policy, time.Time) error {
	return nil
}

// TestConversationsAPI lists, reads, pauses and resumes conversations, who may do which, and
// reports on a queue, on conversations opened and answered through the SLA service.
func TestConversationsAPI(t *testing.T) {
	s := newSLAEnv(t)
	ctx := context.Background()
	mon := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	at := func(day, hour int) time.Time {
		return mon.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour)
	}

	c1 := s.customer("group:sales", "q1@client.example", at(0, 9))
	s.answer("q1@client.example", at(0, 11)) // 2 business hours: within 8
	c2 := s.customer("group:sales", "q2@client.example", at(0, 10))
	s.answer("q2@client.example", at(1, 12)) // Monday 10–17 and Tuesday 9–12: 10 hours, late
	c3 := s.customer("group:sales", "q3@client.example", at(0, 13))
	c4 := s.customer("mailbox:ana@example.com", "q4@client.example", at(0, 14))
	c5 := s.customer("group:sales", "q5@client.example", at(1, 16))
	s.customer("group:sales", "q6@client.example", at(-3, 9)) // the Friday before: outside the range asked for
	s.answer("q6@client.example", at(-3, 10))
	s.now = at(2, 9)
	rep, err := s.svc.Sweep(ctx, quietEscalation{}, 0)
	if err != nil || rep.Breaches != 2 {
		t.Fatalf("sweep = %+v, %v; want c3 and c4 breached", rep, err)
	}

	// Listing: oldest first, filtered by state, the range half-open.
	var ids []string
	for _, c := range s.conversations("queue=group:sales&from=2026-11-02&to=2026-11-05") {
		ids = append(ids, c.ID)
	}
	if want := []string{c1.ID, c2.ID, c3.ID, c5.ID}; !slices.Equal(ids, want) {
		t.Errorf("sales conversations = %q, want %q", ids, want)
	}
	answered := s.conversations("queue=group:sales&from=2026-11-02&to=2026-11-05&state=answered")
	if len(answered) != 2 || *answered[0].FirstResponseHours != 2 || !*answered[0].WithinTarget ||
		*answered[1].FirstResponseHours != 10 || *answered[1].WithinTarget {
		t.Errorf("answered = %+v", answered)
	}
	if got := s.conversations("queue=group:sales&from=2026-11-03T16:00:00Z&to=2026-11-03T16:00:01Z"); len(got) != 1 || got[0].ID != c5.ID {
		t.Errorf("conversations opened at 16:00:00 = %+v, want %s", got, c5.ID)
	}
	if got := s.conversations("queue=mailbox:Ana@EXAMPLE.com"); len(got) != 1 || got[0].ID != c4.ID || !got[0].Breached {
		t.Errorf("Ana's conversations in the last 30 days = %+v, want %s, breached", got, c4.ID)
	}

	// Reading: admins and auditors any; owners their group's; an employee their mailbox's.
	for _, tt := range []struct {
		name   string
		who    string
		path   string
		status int
	}{
		{"auditor reads any", "auditor", "/conversations/" + c4.ID, 200},
		{"owner reads the group's", "manager", "/conversations/" + c3.ID, 200},
		{"owner lists the group's", "manager", "/conversations?queue=group:sales", 200},
		{"owner reads a mailbox's", "manager", "/conversations/" + c4.ID, 403},
		{"owner lists another group's", "manager", "/conversations?queue=group:other", 403},
		{"owner lists a group that does not exist", "manager", "/conversations?queue=group:ghosts", 403},
		{"owner asks for an id that does not exist", "manager", "/conversations/CNOTTHERE", 403},
		{"admin asks for an id that does not exist", "admin", "/conversations/CNOTTHERE", 404},
		{"employee reads their mailbox's", "employee", "/conversations/" + c4.ID, 200},
		{"employee lists their mailbox's", "employee", "/conversations?queue=mailbox:ana@example.com", 200},
		{"employee reads a group's", "employee", "/conversations/" + c3.ID, 403},
		{"employee lists a group's", "employee", "/conversations?queue=group:sales", 403},
		{"employee lists another mailbox's", "employee", "/conversations?queue=mailbox:boss@example.com", 403},
		{"employee reads the group's report", "employee", "/reports/sla?queue=group:sales", 403},
		{"owner reads the group's report", "manager", "/reports/sla?queue=group:sales", 200},
		{"no role", "nobody", "/conversations/" + c4.ID, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			who := map[string]apigw.Claims{"admin": adminUser, "auditor": auditorUser, "manager": managerUser, "employee": employeeAna, "nobody": nobody}[tt.who]
			if r := s.do(who, "GET", tt.path, nil); r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
		})
	}

	// Pausing and resuming: the owner pauses c5 after an hour of its target; a second pause is
	// a conflict; an admin resumes it two hours later, and the deadline moves by two hours.
	get := func(id string) conversationJSON {
		t.Helper()
		var c conversationJSON
		if err := json.Unmarshal(s.must(auditorUser, 200, "GET", "/conversations/"+id, nil).body, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := get(c5.ID); c.State != sla.Waiting || !c.Due.Equal(at(2, 16)) {
		t.Fatalf("c5 before the pause = %+v, want waiting, due Wednesday 16:00", c)
	}
	s.must(auditorUser, 403, "POST", "/conversations/"+c5.ID+"/pause", nil)
	s.must(employeeAna, 403, "POST", "/conversations/"+c5.ID+"/pause", nil)
	var paused conversationJSON
	if err := json.Unmarshal(s.must(managerUser, 200, "POST", "/conversations/"+c5.ID+"/pause", nil).body, &paused); err != nil {
		t.Fatal(err)
	}
	if paused.State != sla.Paused || paused.UsedHours != 1 || !paused.Due.IsZero() || !paused.Since.IsZero() {
		t.Errorf("paused = %+v, want paused with 1 hour used and no deadline", paused)
	}
	wantProblem(t, s.do(managerUser, "POST", "/conversations/"+c5.ID+"/pause", nil), 409, "")
	wantProblem(t, s.do(adminUser, "POST", "/conversations/"+c1.ID+"/resume", nil), 409, "")
	s.now = at(2, 11)
	s.must(adminUser, 200, "POST", "/conversations/"+c5.ID+"/resume", nil)
	if c := get(c5.ID); c.State != sla.Waiting || !c.Since.Equal(at(2, 11)) || !c.Due.Equal(at(3, 10)) {
		t.Errorf("resumed = %+v, want waiting since Wednesday 11:00, due Thursday 10:00", c)
	}
	wantProblem(t, s.do(adminUser, "POST", "/conversations/"+c5.ID+"/resume", nil), 409, "")
	// An employee pauses their own mailbox's conversation; its owner may not.
	s.must(managerUser, 403, "POST", "/conversations/"+c4.ID+"/pause", nil)
	s.must(employeeAna, 200, "POST", "/conversations/"+c4.ID+"/pause", nil)
	s.must(adminUser, 404, "POST", "/conversations/CNOTTHERE/pause", nil)
	s.must(managerUser, 403, "POST", "/conversations/CNOTTHERE/pause", nil)

	// The entries are dated by the service's clock, as the changes are.
	audit := func(id string) []map[string]any {
		t.Helper()
		var page struct{ Items []map[string]any }
		q := "/audit?from=2026-11-01T00:00:00Z&to=2026-11-08T00:00:00Z&resource=conversation:" + id
		if err := json.Unmarshal(s.must(auditorUser, 200, "GET", q, nil).body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	var actions []string
	for _, e := range slices.Backward(audit(c5.ID)) {
		actions = append(actions, fmt.Sprintf("%s by %s at %s", e["action"], e["actor"].(map[string]any)["subject"], e["at"]))
	}
	want := []string{"conversation.pause by u-boss at 2026-11-04T09:00:00Z", "conversation.resume by u-admin at 2026-11-04T11:00:00Z"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit = %q, want %q", actions, want)
	}
	entries := audit(c4.ID)
	if len(entries) != 1 {
		t.Fatalf("audit of %s = %v, want one entry", c4.ID, entries)
	}
	entry := entries[0]
	if entry["before"].(map[string]any)["state"] != "waiting" || entry["after"].(map[string]any)["state"] != "paused" ||
		entry["after"].(map[string]any)["usedHours"] != 13.0 {
		t.Errorf("audit entry = %v, want waiting before and paused with 13 hours used after", entry)
	}

	// The report: of four conversations opened, two answered, one within target; c3 breached.
	r := s.must(managerUser, 200, "GET", "/reports/sla?queue=group:sales&from=2026-11-02&to=2026-11-05", nil)
	var got sla.Report
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	wantReport := sla.Report{Queue: "group:sales", From: mon, To: at(3, 0), Conversations: 4, Answered: 2, WithinTarget: 1,
		Share: 0.25, MedianHours: 2, P90Hours: 10, Breaches: []string{c3.ID}}
	if !got.From.Equal(wantReport.From) || !got.To.Equal(wantReport.To) || got.Queue != wantReport.Queue || got.Conversations != 4 ||
		got.Answered != 2 || got.WithinTarget != 1 || got.Share != 0.25 || got.MedianHours != 2 || got.P90Hours != 10 ||
		!slices.Equal(got.Breaches, wantReport.Breaches) {
		t.Errorf("report = %+v\nwant     %+v", got, wantReport)
	}
	// The default range is the last 30 days of the service's clock: the Friday before is in it.
	if got := s.must(adminUser, 200, "GET", "/reports/sla?queue=group:sales", nil).json(t); got["conversations"] != 5.0 {
		t.Errorf("report of the last 30 days = %v, want 5 conversations", got)
	}

	for _, tt := range []struct {
		name, path, field string
	}{
		{"no queue", "/conversations", "queue"},
		{"a queue of no kind", "/conversations?queue=sales", "queue"},
		{"a queue of another kind", "/reports/sla?queue=alias:info@example.com", "queue"},
		{"a mailbox queue without an address", "/conversations?queue=mailbox:ana", "queue"},
		{"unknown state", "/conversations?queue=group:sales&state=open", "state"},
		{"from not a date", "/conversations?queue=group:sales&from=yesterday", "from"},
		{"range backwards", "/reports/sla?queue=group:sales&from=2026-11-05&to=2026-11-02", "to"},
		{"a range of decades", "/reports/sla?queue=group:sales&from=1990-01-01&to=2026-11-02", "from"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.do(adminUser, "GET", tt.path, nil), 400, tt.field)
		})
	}
}

// TestPauseWithoutPolicy: a conversation whose policy was deleted can be read, but its clock
// cannot be counted, so it is neither paused nor resumed.
func TestPauseWithoutPolicy(t *testing.T) {
	s := newSLAEnv(t)
	mon := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	c := s.customer("group:sales", "q1@client.example", mon)
	s.now = mon.Add(time.Hour)
	s.must(adminUser, 204, "DELETE", "/sla/policies/sales", nil)
	s.must(managerUser, 200, "GET", "/conversations/"+c.ID, nil)
	r := s.do(managerUser, "POST", "/conversations/"+c.ID+"/pause", nil)
	wantProblem(t, r, 409, "")
	if d := r.json(t)["detail"].(string); !strings.Contains(d, "no longer exists") {
		t.Errorf("detail %q does not say the policy is gone", d)
	}
}

// TestSLAUnconfigured: a handler built without a state table keeps policies and calendars in
// the directory, and answers the conversation and report routes 503.
func TestSLAUnconfigured(t *testing.T) {
	h, err := admin.New(admin.Config{DirectoryTable: "unused", AuditTable: "unused"}, devstacktest.Clients(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []struct{ method, path, query string }{
		{"GET", "/conversations", "queue=group:sales"},
		{"GET", "/conversations/C1", ""},
		{"POST", "/conversations/C1/pause", ""},
		{"POST", "/conversations/C1/resume", ""},
		{"GET", "/reports/sla", "queue=group:sales"},
	} {
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RawPath: route.path, RawQueryString: route.query,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.method, Path: route.path},
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
			t.Errorf("%s %s: status %d %q, want a 503 problem: %s", route.method, route.path, res.StatusCode, res.Headers["content-type"], res.Body)
		}
	}
}
