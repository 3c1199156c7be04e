package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// The archive routes search the archive's listings (shared/archive's Search) and read one
// message's record. Only admins and auditors may, and each search and each read is written to
// the audit log: what the archive holds is everyone's mail.

// errNoArchive is the cause, for the log, of a 503 from a handler built without the archive.
var errNoArchive = errors.New("the handler has no archive: ARCHIVE_TABLE is not set")

// WithArchive serves the archive routes: search pages through the listings, records reads one
// message's record. Call it before the handler serves.
func (h *Handler) WithArchive(search *archive.Search, records archive.Index) *Handler {
	h.search, h.records = search, records
	return h
}

// archiveFor checks that the caller may search the archive and that the handler has one. When
// not, it has answered the request. Deny by default: the roles are checked before anything else.
func (h *Handler) archiveFor(w http.ResponseWriter, c directory.Call, op string) bool {
	if err := c.Principal.Allow(op, false, directory.RoleAdmin, directory.RoleAuditor); err != nil {
		fail(w, err)
		return false
	}
	if h.search == nil || h.records == nil {
		if sw, ok := w.(*statusWriter); ok {
			sw.err = errNoArchive
		}
		writeProblem(w, problemFor(http.StatusServiceUnavailable, "this deployment's admin API has no archive to search", ""))
		return false
	}
	return true
}

// searchParams are the query parameters of GET /archive/search. Any other is refused: a
// misspelt criterion would otherwise widen the search without a word.
var searchParams = map[string]bool{
	"mailbox": true, "recipient": true, "group": true, "sender": true, "label": true, "from": true,
	"to": true, "subject": true, "hasAttachment": true, "limit": true, "cursor": true,
}

// searchArchive answers GET /archive/search. The search runs before it is audited and its
// results are sent only after the audit entry is written, so nothing leaves the archive
// unrecorded, and a search that failed is no entry.
func (h *Handler) searchArchive(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.searchArchive"
	if !h.archiveFor(w, c, op) {
		return
	}
	q, err := searchQuery(r)
	if err != nil {
		fail(w, err)
		return
	}
	p, err := h.search.Prepare(q)
	if err != nil {
		fail(w, err)
		return
	}
	page, err := h.search.Run(r.Context(), p)
	if err == nil {
		err = h.auditRead(r.Context(), c, "archive.search", "archive:"+p.Scope(), p.Query)
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// archivedMessage answers GET /archive/messages/{id}: the message's record, audited as
// message.read.
func (h *Handler) archivedMessage(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.archivedMessage"
	if !h.archiveFor(w, c, op) {
		return
	}
	id := r.PathValue("id")
	if !archive.ValidID(id) {
		fail(w, invalid("id", "is not an archived message's id"))
		return
	}
	rec, err := h.records.Get(r.Context(), id)
	if err == nil {
		err = h.auditRead(r.Context(), c, "message.read", "message:"+id, struct {
			ID string `json:"id"`
		}{id})
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// auditRead records that the caller read from the archive; body (the query) is the entry's after.
func (h *Handler) auditRead(ctx context.Context, c directory.Call, action, resource string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fault.Wrap(fault.Internal, "admin.auditRead", err)
	}
	return h.directory.Store.Apply(ctx, directory.Record{Entry: directory.AuditEntry{
		ID: h.auditID(), At: h.now().UTC(), Actor: c.Principal.Actor(), Action: action,
		Resource: resource, After: b, RequestID: c.RequestID,
	}})
}

// searchQuery reads GET /archive/search's parameters. Times are RFC 3339 or dates in UTC; a date
// as `to` means the whole of that day.
func searchQuery(r *http.Request) (archive.Query, error) {
	v := r.URL.Query()
	for name := range v {
		if !searchParams[name] {
			return archive.Query{}, invalid(name, "is not a search parameter")
		}
	}
	q := archive.Query{
		Mailbox: v.Get("mailbox"), Recipient: v.Get("recipient"), Group: v.Get("group"),
		Sender: v.Get("sender"), Label: v.Get("label"), Subject: v.Get("subject"), Cursor: v.Get("cursor"),
	}
	var err error
	if q.From, err = searchTime(v.Get("from"), "from", false); err != nil {
		return q, err
	}
	if q.To, err = searchTime(v.Get("to"), "to", true); err != nil {
		return q, err
	}
	if s := v.Get("hasAttachment"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, invalid("hasAttachment", "must be true or false")
		}
		q.HasAttachment = &b
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > archive.MaxLimit {
			return q, invalid("limit", "must be a number from 1 to %d", archive.MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// searchTime reads a bound of the search's range: an RFC 3339 time, or a date, which stands for
// the start of that UTC day, or as the end of the range (end) for its last instant.
func searchTime(s, field string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			return d.AddDate(0, 0, 1).Add(-time.Nanosecond), nil
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid(field, "must be a date such as 2026-11-01 or an RFC 3339 time such as 2026-11-01T09:00:00Z")
	}
	return t.UTC(), nil
}
