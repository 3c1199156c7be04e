package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

type requestKey struct{}

// requestInfo is what API Gateway told the function about a request: its id and the verified
// token's claims.
type requestInfo struct {
	id     string
	claims map[string]string
	scopes []string
}

func withRequest(ctx context.Context, ri requestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, ri)
}

func requestOf(ctx context.Context) requestInfo {
	ri, _ := ctx.Value(requestKey{}).(requestInfo)
	return ri
}

// ServeHTTP answers one request: it identifies the caller, runs the route, and logs one line.
// Requests reach it from Handle (Lambda) or directly from tests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
	h.mux.ServeHTTP(sw, r)
	if !sw.wrote {
		sw.WriteHeader(http.StatusOK)
	}
	ri := requestOf(r.Context())
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "route", r.Pattern, "status", sw.status,
		"requestId", ri.id, "sub", ri.claims["sub"], "ms", time.Since(start).Milliseconds()}
	if sw.err != nil {
		attrs = append(attrs, "err", sw.err)
	}
	h.log.Log(r.Context(), level, "request", attrs...)
}

// statusWriter remembers the status and the cause of a failure for the log line, and turns
// net/http's plain-text 404 and 405 answers into problem documents.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	err    error
	muted  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote, w.status = true, status
	h := w.Header()
	if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		// The mux found no route: answer in the API's error format instead of its text.
		h.Del("X-Content-Type-Options")
		detail := "no such resource"
		if status == http.StatusMethodNotAllowed {
			detail = "the resource does not support this method"
		}
		body, _ := json.Marshal(problemFor(status, detail, ""))
		h.Set("Content-Type", problemType)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.ResponseWriter.WriteHeader(status)
		_, _ = w.ResponseWriter.Write(body)
		w.muted = true
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.muted {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

const problemType = "application/problem+json"

// problem is an RFC 9457 problem document. Extensions carry the field at fault and, where they
// help, every invalid field or a group cycle.
type problem struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Status     int            `json:"status"`
	Detail     string         `json:"detail,omitempty"`
	Field      string         `json:"field,omitempty"`
	Extensions map[string]any `json:"-"`
}

func (p problem) MarshalJSON() ([]byte, error) {
	m := map[string]any{"type": p.Type, "title": p.Title, "status": p.Status}
	for k, v := range p.Extensions {
		m[k] = v
	}
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	if p.Field != "" {
		m["field"] = p.Field
	}
	return json.Marshal(m)
}

var problemTypes = map[int]struct{ slug, title string }{
	http.StatusBadRequest:            {"invalid", "Invalid request"},
	http.StatusUnauthorized:          {"unauthenticated", "Authentication required"},
	http.StatusForbidden:             {"forbidden", "Forbidden"},
	http.StatusNotFound:              {"not-found", "Not found"},
	http.StatusMethodNotAllowed:      {"method-not-allowed", "Method not allowed"},
	http.StatusConflict:              {"conflict", "Conflict"},
	http.StatusPreconditionFailed:    {"precondition-failed", "Precondition failed"},
	http.StatusRequestEntityTooLarge: {"too-large", "Request too large"},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type"},
	http.StatusUnprocessableEntity:   {"idempotency-key-reused", "Idempotency key reused"},
	http.StatusInternalServerError:   {"internal", "Internal error"},
	http.StatusServiceUnavailable:    {"unavailable", "Service unavailable"},
}

func problemFor(status int, detail, field string) problem {
	t := problemTypes[status]
	return problem{Type: "https://mailroom.dev/problems/" + t.slug, Title: t.title, Status: status, Detail: detail, Field: field}
}

func writeProblem(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", problemType)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// statusOf maps fault kinds to HTTP status codes.
func statusOf(err error) int {
	switch fault.KindOf(err) {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unauthenticated:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.Stale:
		return http.StatusPreconditionFailed
	case fault.Transient:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers with the problem err describes. Internal errors show the caller nothing of their
// cause; the log line has it.
func fail(w http.ResponseWriter, err error) {
	if sw, ok := w.(*statusWriter); ok {
		sw.err = err
	}
	status := statusOf(err)
	detail := fault.MessageOf(err)
	switch status {
	case http.StatusInternalServerError:
		detail = "the request failed; it has been logged"
	case http.StatusServiceUnavailable:
		detail = "a service Mailroom depends on is unavailable; try again"
		w.Header().Set("Retry-After", "1")
	}
	p := problemFor(status, detail, fault.FieldOf(err))
	if status < 500 {
		p.Extensions = fault.DetailsOf(err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailroom"`)
	}
	writeProblem(w, p)
}

func invalid(field, format string, args ...any) error {
	return fault.InvalidField("admin", field, format, args...)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// etag is a resource version as an entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads an If-Match header: the version the caller last saw, or 0 for none or "*".
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 1 || !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) {
		return 0, invalid("If-Match", "must be an ETag this API returned, such as \"3\"")
	}
	return n, nil
}

// readBody reads a request body of one of the accepted media types.
func readBody(r *http.Request, accepted ...string) ([]byte, string, error) {
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, "", &fault.Error{Kind: fault.Invalid, Op: "admin", Field: "Content-Type", Message: "is malformed", Err: errUnsupported}
		}
	}
	ok := false
	for _, a := range accepted {
		ok = ok || mt == a
	}
	if !ok {
		return nil, "", &fault.Error{Kind: fault.Invalid, Op: "admin", Field: "Content-Type",
			Message: "must be " + strings.Join(accepted, " or "), Err: errUnsupported}
	}
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, "", &fault.Error{Kind: fault.Invalid, Op: "admin", Field: "body", Message: fmt.Sprintf("is larger than %d bytes", maxBody), Err: errTooLarge}
	}
	if err != nil {
		return nil, "", fault.Wrap(fault.Transient, "admin", err)
	}
	return b, mt, nil
}

var (
	errUnsupported = errors.New("unsupported media type")
	errTooLarge    = errors.New("too large")
)

// failBody answers a body that could not be read: 415 and 413 have their own status codes.
func failBody(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errUnsupported):
		writeProblem(w, problemFor(http.StatusUnsupportedMediaType, fault.MessageOf(err), fault.FieldOf(err)))
	case errors.Is(err, errTooLarge):
		writeProblem(w, problemFor(http.StatusRequestEntityTooLarge, fault.MessageOf(err), fault.FieldOf(err)))
	default:
		fail(w, err)
	}
}

// pageOf reads limit and cursor.
func pageOf(r *http.Request) (directory.Page, error) {
	q := r.URL.Query()
	p := directory.Page{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return p, invalid("limit", "must be a number from 1 to 1000")
		}
		p.Limit = n
	}
	return p, nil
}

// list is one page of a listing.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

func writeList[T any](w http.ResponseWriter, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, list[T]{Items: items, Next: next})
}
