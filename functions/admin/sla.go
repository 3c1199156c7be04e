package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sla"
)

// The SLA routes (docs/admin-api.md, "SLA: policies, calendars, conversations, reports").
// Policies and business calendars are directory settings, versioned and audited as routing rules
// are; conversations and reports are read from the state table through sla.Service.

// errNoSLA is the cause, for the log, of a 503 from a handler built without a state table.
var errNoSLA = errors.New("the handler has no SLA service: STATE_TABLE is not set")

// WithSLA serves the conversation and report routes from svc. Call it before the handler serves.
func (h *Handler) WithSLA(svc *sla.Service) *Handler {
	h.sla = svc
	return h
}

// settingID is the form of policy and calendar ids: they name a resource in a path and a key.
var settingID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// slaSettings are SLA policies or business calendars kept as directory settings: who may read
// and change them is the kind's default, admins write and admins and auditors read.
type slaSettings[T any] struct {
	d    *directory.Service
	kind directory.SettingKind
	of   func(directory.Setting) (T, error)
	// key is where a T keeps its id, and the name an id is derived from when it has none.
	key func(*T) (id *string, name string)
}

func (x slaSettings[T]) list(ctx context.Context, c directory.Call, _ directory.Page) ([]T, string, error) {
	settings, _, err := x.d.Settings(ctx, c, x.kind)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(settings))
	for _, s := range settings {
		v, err := x.of(s)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int {
		ida, _ := x.key(&a)
		idb, _ := x.key(&b)
		return strings.Compare(*ida, *idb)
	})
	return out, "", nil
}

func (x slaSettings[T]) create(ctx context.Context, c directory.Call, v T) (T, error) {
	var zero T
	id, name := x.key(&v)
	if *id == "" {
		*id = strings.TrimRight(truncate(directory.GroupID(name), 63), "-")
		if *id == "" {
			return zero, invalid("name", "is required to derive the id from, unless id is given")
		}
	}
	if !settingID.MatchString(*id) {
		return zero, invalid("id", "%q must be 1 to 63 lower-case letters, digits and -, starting with a letter or digit", *id)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return zero, fault.Wrap(fault.Internal, "admin.slaSettings", err)
	}
	s, err := x.d.CreateSetting(ctx, c, x.kind, *id, body)
	if err != nil {
		return zero, err
	}
	return x.of(s)
}

func (x slaSettings[T]) get(ctx context.Context, c directory.Call, id string) (T, error) {
	s, err := x.d.Setting(ctx, c, x.kind, id)
	if err != nil {
		var zero T
		return zero, err
	}
	return x.of(s)
}

func (x slaSettings[T]) update(ctx context.Context, c directory.Call, id string, patch []byte) (T, error) {
	s, err := x.d.UpdateSetting(ctx, c, x.kind, id, patch)
	if err != nil {
		var zero T
		return zero, err
	}
	return x.of(s)
}

func (x slaSettings[T]) delete(ctx context.Context, c directory.Call, id string) error {
	return x.d.DeleteSetting(ctx, c, x.kind, id)
}

func policyKey(p *sla.Policy) (*string, string)            { return &p.ID, p.Name }
func calendarKey(c *sla.CalendarSetting) (*string, string) { return &c.ID, c.Name }

// policyDirectory is what policies are checked against: the directory's store, which keeps the
// calendars too. A store without settings never reaches the check, since the settings routes
// refuse before validating.
func policyDirectory(s directory.Store) sla.Directory {
	if d, ok := s.(sla.Directory); ok {
		return d
	}
	return noSettings{s}
}

type noSettings struct{ directory.Store }

func (noSettings) Setting(context.Context, string, string) (directory.Setting, error) {
	return directory.Setting{}, fault.New(fault.Internal, "admin.policyDirectory", "the directory store keeps no settings")
}

// deleteCalendar refuses to remove a calendar a policy runs on: the policy would fall back to the
// default week without anyone having said so.
func (h *Handler) deleteCalendar(ctx context.Context, c directory.Call, id string) error {
	const op = "admin.deleteCalendar"
	if err := c.Principal.Allow(op, true, directory.RoleAdmin); err != nil {
		return err
	}
	policies, _, err := h.directory.Settings(ctx, c, sla.PolicySetting(policyDirectory(h.directory.Store)))
	if err != nil {
		return err
	}
	var users []string
	for _, s := range policies {
		p, err := sla.PolicyOf(s)
		if err != nil {
			return err
		}
		if p.Calendar == id {
			users = append(users, p.ID)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fault.New(fault.Conflict, op, "calendar %s is in use by the SLA policies %s; give them another calendar first", id, strings.Join(users, ", "))
	}
	return h.directory.DeleteSetting(ctx, c, sla.CalendarSettingKind(), id)
}

// holidayImport is the answer to an import: the calendar as it now is, how many dates the feed
// gave within the range, and how many of them were new.
type holidayImport struct {
	Calendar sla.CalendarSetting `json:"calendar"`
	Found    int                 `json:"found"`
	Added    int                 `json:"added"`
}

// importAttempts bounds the retries of an import that lost to another change of the calendar.
const importAttempts = 3

// importHolidays answers POST /calendars/{id}/holidays: the body is an iCalendar feed
// (text/calendar, at most calendar.MaxFeedBytes), whose dates between the query's from and to
// (dates; this year and next by default) are merged into the calendar's holidays. A repeat adds
// nothing, so it takes no Idempotency-Key. Admins only.
func (h *Handler) importHolidays(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.importHolidays"
	if err := c.Principal.Allow(op, true, directory.RoleAdmin); err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	var dates [2]time.Time // from and to, as dates only; placed in the calendar's zone below
	for i, field := range []string{"from", "to"} {
		if v := q.Get(field); v != "" {
			d, err := time.Parse(time.DateOnly, v)
			if err != nil {
				fail(w, invalid(field, "must be a date such as 2026-01-01"))
				return
			}
			dates[i] = d
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, calendar.MaxFeedBytes)
	feed, _, err := readBody(r, "text/calendar")
	if errors.Is(err, errTooLarge) {
		writeProblem(w, problemFor(http.StatusRequestEntityTooLarge, "the feed is larger than 1 MiB; export fewer years", "ics"))
		return
	}
	if err != nil {
		failBody(w, err)
		return
	}

	kind := sla.CalendarSettingKind()
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		s, err := h.directory.Setting(ctx, c, kind, r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		if c.IfMatch != 0 && c.IfMatch != s.Version {
			fail(w, &fault.Error{Kind: fault.Stale, Op: op, Field: "If-Match",
				Message: "the calendar has changed since that version; read it again"})
			return
		}
		cal, err := sla.CalendarOf(s)
		if err != nil {
			fail(w, err)
			return
		}
		loc, err := calendar.LoadZone(cal.TimeZone)
		if err != nil {
			fail(w, fault.Wrap(fault.Internal, op, err)) // checked when stored
			return
		}
		from, to := holidayRange(dates, h.now().In(loc), loc)
		found, err := calendar.Holidays(bytes.NewReader(feed), loc, from, to)
		if err != nil {
			fail(w, err)
			return
		}
		merged := slices.Concat(cal.Holidays, found)
		slices.Sort(merged)
		merged = slices.Compact(merged)
		added := len(merged) - len(cal.Holidays)
		if added == 0 {
			w.Header().Set("ETag", etag(cal.Version))
			writeJSON(w, http.StatusOK, holidayImport{Calendar: cal, Found: len(found)})
			return
		}
		patch, err := json.Marshal(map[string]any{"holidays": merged})
		if err != nil {
			fail(w, fault.Wrap(fault.Internal, op, err))
			return
		}
		// The merge is of the version read: written only if it is still current.
		call := c
		call.IfMatch = s.Version
		out, err := h.directory.UpdateSetting(ctx, call, kind, cal.ID, patch)
		if fault.Is(err, fault.Stale) && c.IfMatch == 0 && attempt < importAttempts {
			continue
		}
		if err != nil {
			fail(w, err)
			return
		}
		if cal, err = sla.CalendarOf(out); err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("ETag", etag(cal.Version))
		writeJSON(w, http.StatusOK, holidayImport{Calendar: cal, Found: len(found), Added: added})
		return
	}
}

// holidayRange places the from and to dates of an import in the calendar's zone: by default the
// first day of this year and the last of next year, as now falls there.
func holidayRange(dates [2]time.Time, now time.Time, loc *time.Location) (from, to time.Time) {
	from = time.Date(now.Year(), time.January, 1, 0, 0, 0, 0, loc)
	to = time.Date(now.Year()+1, time.December, 31, 0, 0, 0, 0, loc)
	if d := dates[0]; !d.IsZero() {
		from = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	}
	if d := dates[1]; !d.IsZero() {
		to = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	}
	return from, to
}

func (h *Handler) now() time.Time {
	if h.directory.Now != nil {
		return h.directory.Now()
	}
	return time.Now()
}

// conversationView is a conversation as the API shows it: business time in hours, as policies
// state their targets, rather than sla.Conversation's nanoseconds, and every time in UTC.
type conversationView struct {
	ID       string    `json:"id"`
	Queue    string    `json:"queue"`
	Policy   string    `json:"policy"`
	Customer string    `json:"customer"`
	Subject  string    `json:"subject"`
	OpenedAt time.Time `json:"openedAt"`
	State    string    `json:"state"`
	Target   string    `json:"target"`
	// Since is when the running clock started, while waiting; UsedHours the business hours of
	// the target used before it (all of them, while paused).
	Since     time.Time `json:"since,omitzero"`
	UsedHours float64   `json:"usedHours"`
	WarnAt    time.Time `json:"warnAt,omitzero"`
	Due       time.Time `json:"due,omitzero"`
	Warned    bool      `json:"warned,omitempty"`
	Breached  bool      `json:"breached,omitempty"`
	// HoldingSent says the customer was told the answer will take longer.
	HoldingSent bool `json:"holdingSent,omitempty"`
	// The first response's time and business hours, and whether it kept the target: all three
	// or none.
	FirstResponseAt    time.Time `json:"firstResponseAt,omitzero"`
	FirstResponseHours *float64  `json:"firstResponseHours,omitempty"`
	WithinTarget       *bool     `json:"withinTarget,omitempty"`
	Responses          int       `json:"responses"`
	Breaches           int       `json:"breaches"`
	LastMessageAt      time.Time `json:"lastMessageAt"`
	Language           string    `json:"language,omitempty"`
	Version            int64     `json:"version"`
}

func presentConversation(c sla.Conversation) conversationView {
	v := conversationView{
		ID: c.ID, Queue: c.Queue, Policy: c.Policy, Customer: c.Customer, Subject: c.Subject,
		OpenedAt: utc(c.OpenedAt), State: c.State, Target: c.Target, Since: utc(c.Since),
		UsedHours: hoursOf(c.Used), WarnAt: utc(c.WarnAt), Due: utc(c.Due),
		Warned: c.Warned, Breached: c.Breached, HoldingSent: c.HoldingSent,
		Responses: c.Responses, Breaches: c.Breaches, LastMessageAt: utc(c.LastMessageAt),
		Language: c.Language, Version: c.Version,
	}
	if !c.FirstResponseAt.IsZero() {
		hours, within := hoursOf(c.FirstResponse), c.WithinTarget
		v.FirstResponseAt, v.FirstResponseHours, v.WithinTarget = utc(c.FirstResponseAt), &hours, &within
	}
	return v
}

// hoursOf is a business time in hours to 0.01, as reports show them.
func hoursOf(d time.Duration) float64 { return math.Round(d.Hours()*100) / 100 }

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// slaFor checks that the caller has a role that may ever read (or, with write, pause and resume)
// conversations, and that the handler has them. When not, it has answered the request. Which
// conversations the caller may see is decided per queue by mayFollow.
func (h *Handler) slaFor(w http.ResponseWriter, c directory.Call, op string, write bool) (*sla.Service, bool) {
	roles := []string{directory.RoleAdmin, directory.RoleAuditor, directory.RoleGroupManager, directory.RoleEmployee}
	if write {
		roles = []string{directory.RoleAdmin, directory.RoleGroupManager, directory.RoleEmployee}
	}
	if err := c.Principal.Allow(op, write, roles...); err != nil {
		fail(w, err)
		return nil, false
	}
	if h.sla == nil {
		if sw, ok := w.(*statusWriter); ok {
			sw.err = errNoSLA
		}
		writeProblem(w, problemFor(http.StatusServiceUnavailable, "this deployment keeps no SLA conversations", ""))
		return nil, false
	}
	return h.sla, true
}

// followsAll returns the roles by which p may read (or change) every queue's conversations, or
// nil when p has none of them.
func followsAll(p directory.Principal, write bool) []string {
	roles := []string{directory.RoleAdmin}
	if !write {
		roles = append(roles, directory.RoleAuditor)
	}
	if slices.ContainsFunc(roles, p.Has) {
		return roles
	}
	return nil
}

// mayFollow decides whether p may read (or, with write, pause and resume) the conversations of
// queue: admins any; auditors read any and change none; a group's owners their group's; an
// employee their own mailbox's. Anyone else is refused, whether or not the queue exists.
func (h *Handler) mayFollow(ctx context.Context, p directory.Principal, op, queue string, write bool) error {
	if roles := followsAll(p, write); roles != nil {
		return p.Allow(op, write, roles...)
	}
	refused := fault.New(fault.Forbidden, op, "you may follow only the conversations of the groups you own and of your own mailbox")
	if p.Email == "" {
		return refused
	}
	kind, id, _ := strings.Cut(queue, ":")
	switch kind {
	case directory.KindMailbox:
		if id == p.Email {
			return p.Allow(op, write, directory.RoleEmployee)
		}
	case directory.KindGroup:
		g, err := h.directory.Store.Group(ctx, id)
		if fault.Is(err, fault.NotFound) {
			return refused
		}
		if err != nil {
			return err
		}
		if slices.Contains(g.Owners, p.Email) {
			return p.Allow(op, write, directory.RoleGroupManager, directory.RoleEmployee)
		}
	}
	return refused
}

// findConversation reads a conversation the caller may read (or change). Those who may not see
// every queue get 403 for an id that does not exist, as for one they may not see.
func (h *Handler) findConversation(ctx context.Context, svc *sla.Service, p directory.Principal, op, id string, write bool) (sla.Conversation, error) {
	if roles := followsAll(p, write); roles != nil {
		if err := p.Allow(op, write, roles...); err != nil {
			return sla.Conversation{}, err
		}
		return svc.Store.Conversation(ctx, id)
	}
	c, err := svc.Store.Conversation(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return sla.Conversation{}, fault.New(fault.Forbidden, op, "you may follow only the conversations of the groups you own and of your own mailbox")
	}
	if err != nil {
		return sla.Conversation{}, err
	}
	if err := h.mayFollow(ctx, p, op, c.Queue, write); err != nil {
		return sla.Conversation{}, err
	}
	return c, nil
}

// queueParam reads the required queue: group:<id> or mailbox:<address>, in the form
// conversations are kept under.
func queueParam(r *http.Request) (string, error) {
	v := r.URL.Query().Get("queue")
	kind, id, _ := strings.Cut(v, ":")
	switch {
	case v == "":
		return "", invalid("queue", "is required: group:<id> or mailbox:<address>")
	case kind == directory.KindGroup && id != "":
		return sla.Queue(kind, id), nil
	case kind == directory.KindMailbox:
		a, err := directory.NormalizeAddress(id)
		if err != nil {
			return "", invalid("queue", "%q is not an address: %v", id, err)
		}
		return sla.Queue(kind, a), nil
	}
	return "", invalid("queue", "%q must be group:<id> or mailbox:<address>", v)
}

// defaultSLARange is the period conversations and reports cover when the query names none.
const defaultSLARange = 30 * 24 * time.Hour

// slaRange reads from and to, each a date (00:00 UTC that day) or an RFC 3339 time; the range
// is [from, to), the last 30 days by default.
func slaRange(r *http.Request, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	read := func(field string) (time.Time, error) {
		v := q.Get(field)
		if v == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, invalid(field, "must be a date such as 2026-11-01 or an RFC 3339 time such as 2026-11-01T09:00:00Z")
		}
		return t.UTC(), nil
	}
	if from, err = read("from"); err != nil {
		return from, to, err
	}
	if to, err = read("to"); err != nil {
		return from, to, err
	}
	switch {
	case from.IsZero() && to.IsZero():
		to = now.UTC()
		from = to.Add(-defaultSLARange)
	case from.IsZero():
		from = to.Add(-defaultSLARange)
	case to.IsZero():
		to = now.UTC()
	}
	if !to.After(from) {
		return from, to, invalid("to", "must be after from")
	}
	return from, to, nil
}

func slaNow(svc *sla.Service) time.Time {
	if svc.Now != nil {
		return svc.Now()
	}
	return time.Now()
}

var conversationStates = []string{sla.Waiting, sla.Paused, sla.Answered}

// listConversations answers GET /conversations?queue=&from=&to=&state=: the queue's
// conversations opened in [from, to), oldest first, all in one answer.
func (h *Handler) listConversations(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.listConversations"
	svc, ok := h.slaFor(w, c, op, false)
	if !ok {
		return
	}
	queue, err := queueParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	state := r.URL.Query().Get("state")
	if state != "" && !slices.Contains(conversationStates, state) {
		fail(w, invalid("state", "must be one of %s", strings.Join(conversationStates, ", ")))
		return
	}
	if err := h.mayFollow(r.Context(), c.Principal, op, queue, false); err != nil {
		fail(w, err)
		return
	}
	from, to, err := slaRange(r, slaNow(svc))
	if err != nil {
		fail(w, err)
		return
	}
	convs, err := svc.Store.Opened(r.Context(), queue, from, to)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]conversationView, 0, len(convs))
	for _, conv := range convs {
		if state == "" || conv.State == state {
			out = append(out, presentConversation(conv))
		}
	}
	writeList(w, out, "")
}

// conversation answers GET /conversations/{id}.
func (h *Handler) conversation(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.conversation"
	svc, ok := h.slaFor(w, c, op, false)
	if !ok {
		return
	}
	conv, err := h.findConversation(r.Context(), svc, c.Principal, op, r.PathValue("id"), false)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, presentConversation(conv))
}

// pauseConversation answers POST /conversations/{id}/pause: the clock stops while the
// conversation waits on the customer. 409 unless it is waiting, a second pause included.
func (h *Handler) pauseConversation(w http.ResponseWriter, r *http.Request, c directory.Call) {
	h.changeConversation(w, r, c, "admin.pauseConversation", "conversation.pause", sla.Waiting, (*sla.Service).Pause)
}

// resumeConversation answers POST /conversations/{id}/resume: the clock runs again. 409 unless
// the conversation is paused.
func (h *Handler) resumeConversation(w http.ResponseWriter, r *http.Request, c directory.Call) {
	h.changeConversation(w, r, c, "admin.resumeConversation", "conversation.resume", sla.Paused, (*sla.Service).Resume)
}

// changeConversation pauses or resumes a conversation in state from, and records it in the audit
// log after it was made: the conversation and the log live in different tables. Should the
// entry fail, the caller gets the error although the change is made, and a repeat answers 409;
// the log has the cause.
func (h *Handler) changeConversation(w http.ResponseWriter, r *http.Request, c directory.Call, op, action, from string,
	change func(*sla.Service, context.Context, string) (sla.Conversation, error)) {
	svc, ok := h.slaFor(w, c, op, true)
	if !ok {
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	before, err := h.findConversation(ctx, svc, c.Principal, op, id, true)
	if err != nil {
		fail(w, err)
		return
	}
	// The service checks again under its conditional write; this spares it retrying a refusal.
	if before.State != from {
		fail(w, fault.New(fault.Conflict, op, "conversation %s is %s, not %s", id, before.State, from))
		return
	}
	after, err := change(svc, ctx, id)
	if fault.Is(err, fault.NotFound) {
		// The conversation was read above: what is gone is its policy, without which its clock
		// cannot be counted.
		err = fault.New(fault.Conflict, op, "conversation %s follows the SLA policy %s, which no longer exists", id, before.Policy)
	}
	if err != nil {
		fail(w, err)
		return
	}
	if err := h.auditConversation(ctx, c, action, slaNow(svc), before, after); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, presentConversation(after))
}

func (h *Handler) auditConversation(ctx context.Context, c directory.Call, action string, at time.Time, before, after sla.Conversation) error {
	const op = "admin.auditConversation"
	b, err := json.Marshal(presentConversation(before))
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	a, err := json.Marshal(presentConversation(after))
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	return h.directory.Store.Apply(ctx, directory.Record{Entry: directory.AuditEntry{
		ID: h.auditID(), At: at.UTC(), Actor: c.Principal.Actor(), Action: action,
		Resource: "conversation:" + after.ID, Before: b, After: a, RequestID: c.RequestID,
	}})
}

// slaReport answers GET /reports/sla?queue=&from=&to=: how the queue kept its promises over
// [from, to), the last 30 days by default.
func (h *Handler) slaReport(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.slaReport"
	svc, ok := h.slaFor(w, c, op, false)
	if !ok {
		return
	}
	queue, err := queueParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := h.mayFollow(r.Context(), c.Principal, op, queue, false); err != nil {
		fail(w, err)
		return
	}
	from, to, err := slaRange(r, slaNow(svc))
	if err != nil {
		fail(w, err)
		return
	}
	rep, err := svc.Report(r.Context(), queue, from, to)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
