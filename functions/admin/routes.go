package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mailroom/mailroom/api"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/routing"
	"github.com/mailroom/mailroom/shared/sla"
)

// route is a handler that knows the caller.
type route func(w http.ResponseWriter, r *http.Request, c directory.Call)

func (h *Handler) handle(pattern string, f route) {
	h.routes = append(h.routes, pattern)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ri := requestOf(r.Context())
		p, err := directory.PrincipalFromClaims(ri.claims, ri.scopes, h.cfg.RolesClaim)
		if err != nil {
			fail(w, err)
			return
		}
		// Every write honours If-Match, so it is read once here rather than by each route.
		version, err := ifMatch(r)
		if err != nil {
			fail(w, err)
			return
		}
		f(w, r, directory.Call{Principal: p, RequestID: ri.id, IfMatch: version})
	})
}

func (h *Handler) register() {
	h.routes = append(h.routes, "GET /openapi.yaml")
	h.mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(api.Document)
	})
	h.handle("GET /me", h.me)

	d := h.directory
	resource(h, "domains", "name", d.Domains, d.CreateDomain, d.Domain, d.UpdateDomain, d.DeleteDomain,
		func(x directory.Domain) (string, int64) { return x.Name, x.Version })
	resource(h, "mailboxes", "address", d.Mailboxes, d.CreateMailbox, d.Mailbox, d.UpdateMailbox, d.DeleteMailbox,
		func(x directory.Mailbox) (string, int64) { return x.Address, x.Version })
	resource(h, "aliases", "address", d.Aliases, d.CreateAlias, d.Alias, d.UpdateAlias, d.DeleteAlias,
		func(x directory.Alias) (string, int64) { return x.Address, x.Version })
	resource(h, "groups", "id", d.Groups, d.CreateGroup, d.Group, d.UpdateGroup, d.DeleteGroup,
		func(x directory.Group) (string, int64) { return x.ID, x.Version })

	h.handle("GET /groups/{id}/members", h.members)
	h.handle("POST /groups/{id}/members", h.addMember)
	h.handle("DELETE /groups/{id}/members/{member}", h.removeMember)
	h.handle("GET /groups/{id}/expanded", h.expanded)
	h.handle("GET /audit", h.audit)
	h.handle("GET /directory/export", h.export)
	h.handle("POST /directory/import", h.importDirectory)
	h.handle("GET /reports/groups", h.reviewGroups)

	rs := rules{d: d, kind: routing.RuleSetting(d.Store)}
	resource(h, "routing/rules", "id", rs.list, rs.create, rs.get, rs.update, rs.delete,
		func(x routing.Rule) (string, int64) { return x.ID, x.Version })
	h.handle("POST /routing/explain", h.explain)

	// Automatic replies (autoreply.go): each setting is kept where it belongs, on its mailbox or
	// group; the kinds decide who may read and change them.
	autoReplySetting[autoreply.OutOfOffice](h, "/mailboxes/{address}/out-of-office", autoreply.OutOfOfficeSetting(d.Store), mailboxParam)
	autoReplySetting[autoreply.ClosedNotice](h, "/mailboxes/{address}/closed-notice", autoreply.ClosedNoticeSetting(d.Store), mailboxParam)
	autoReplySetting[autoreply.Acknowledgement](h, "/groups/{id}/acknowledgement", autoreply.AcknowledgementSetting(d.Store), groupParam)
	h.handle("GET /autoreplies/templates", h.autoReplyTemplates)
	h.handle("GET /autoreplies/rules", h.autoReplyRules)
	h.handle("POST /autoreplies/preview", h.previewAutoReplies)

	// Destinations: bounces, complaints and suspensions (destinations.go).
	h.handle("GET /destinations", h.suspendedDestinations)
	h.handle("GET /destinations/{address}", h.destination)
	h.handle("GET /destinations/{address}/outcomes", h.destinationOutcomes)
	h.handle("DELETE /destinations/{address}/suspension", h.reinstateDestination)

	// SLA (sla.go): policies and business calendars are settings like routing rules; conversations
	// and reports come from the state table.
	pols := slaSettings[sla.Policy]{d: d, kind: sla.PolicySetting(policyDirectory(d.Store)), of: sla.PolicyOf, key: policyKey}
	resource(h, "sla/policies", "id", pols.list, pols.create, pols.get, pols.update, pols.delete,
		func(x sla.Policy) (string, int64) { return x.ID, x.Version })
	cals := slaSettings[sla.CalendarSetting]{d: d, kind: sla.CalendarSettingKind(), of: sla.CalendarOf, key: calendarKey}
	resource(h, "calendars", "id", cals.list, cals.create, cals.get, cals.update, h.deleteCalendar,
		func(x sla.CalendarSetting) (string, int64) { return x.ID, x.Version })
	h.handle("POST /calendars/{id}/holidays", h.importHolidays)
	h.handle("GET /conversations", h.listConversations)
	h.handle("GET /conversations/{id}", h.conversation)
	h.handle("POST /conversations/{id}/pause", h.pauseConversation)
	h.handle("POST /conversations/{id}/resume", h.resumeConversation)
	h.handle("GET /reports/sla", h.slaReport)

	// The archive (archive.go): search and a message's record, admins and auditors, audited.
	h.handle("GET /archive/search", h.searchArchive)
	h.handle("GET /archive/messages/{id}", h.archivedMessage)

	// Moderation of held mail (moderation.go). The decide pages are public: the signed link
	// in the moderation request is their authorization.
	h.handle("GET /moderation", h.listHeld)
	h.handle("GET /moderation/{id}", h.getHeld)
	h.handle("POST /moderation/{id}/approve", h.approveHeld)
	h.handle("POST /moderation/{id}/reject", h.rejectHeld)
	for _, route := range []string{"GET /moderation/{id}/decide", "POST /moderation/{id}/decide"} {
		h.routes = append(h.routes, route)
		h.mux.HandleFunc(route, h.decideLink)
	}
	// The link in the notice that replaces a message too large to forward; public like the
	// decide pages, its signature is its authorization.
	h.routes = append(h.routes, "GET /originals/{ref}")
	h.mux.HandleFunc("GET /originals/{ref}", h.original)
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request, c directory.Call) {
	p := h.directory.Me(c)
	roles, scopes := p.Roles, p.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	me := map[string]any{"subject": p.Subject, "roles": roles, "scopes": scopes}
	if p.Email != "" {
		me["email"] = p.Email
	}
	writeJSON(w, http.StatusOK, me)
}

// resource registers the five routes of a directory collection.
func resource[T any](h *Handler, name, key string,
	listF func(ctx context.Context, c directory.Call, p directory.Page) ([]T, string, error),
	createF func(ctx context.Context, c directory.Call, v T) (T, error),
	getF func(ctx context.Context, c directory.Call, id string) (T, error),
	updateF func(ctx context.Context, c directory.Call, id string, patch []byte) (T, error),
	deleteF func(ctx context.Context, c directory.Call, id string) error,
	ident func(T) (string, int64),
) {
	collection, item := "/"+name, "/"+name+"/{"+key+"}"
	location := func(v T) string {
		id, _ := ident(v)
		return collection + "/" + url.PathEscape(id)
	}
	h.handle("GET "+collection, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		p, err := pageOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		items, next, err := listF(r.Context(), c, p)
		if err != nil {
			fail(w, err)
			return
		}
		writeList(w, items, next)
	})
	h.handle("POST "+collection, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		headers := func(v any) http.Header {
			out := v.(T)
			_, version := ident(out)
			return http.Header{"Location": {location(out)}, "Etag": {etag(version)}}
		}
		h.idempotent(w, r, &c, headers, func(c directory.Call, body []byte) (answer, error) {
			var v T
			if err := directory.Decode("admin", body, &v); err != nil {
				return answer{}, err
			}
			out, err := createF(r.Context(), c, v)
			if err != nil {
				return answer{}, err
			}
			return answer{status: http.StatusCreated, v: out, header: headers(out)}, nil
		})
	})
	h.handle("GET "+item, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		v, err := getF(r.Context(), c, r.PathValue(key))
		if err != nil {
			fail(w, err)
			return
		}
		_, version := ident(v)
		w.Header().Set("ETag", etag(version))
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("PATCH "+item, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		body, _, err := readBody(r, "application/merge-patch+json", "application/json")
		if err != nil {
			failBody(w, err)
			return
		}
		v, err := updateF(r.Context(), c, r.PathValue(key), body)
		if err != nil {
			fail(w, err)
			return
		}
		_, version := ident(v)
		w.Header().Set("ETag", etag(version))
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("DELETE "+item, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		if err := deleteF(r.Context(), c, r.PathValue(key)); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// idempotent runs a POST that may carry an Idempotency-Key. The answer is remembered in the same
// write as the change (see directory.Call.Idempotency), so a retry after a lost response gets the
// first answer and never makes the change twice; the same key with a different request is refused.
func (h *Handler) idempotent(w http.ResponseWriter, r *http.Request, c *directory.Call,
	headers func(any) http.Header, do func(c directory.Call, body []byte) (answer, error)) {
	body, _, err := readBody(r, "application/json")
	if err != nil {
		failBody(w, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		a, err := do(*c, body)
		h.write(w, a, err)
		return
	}
	if len(key) > maxIdempotencyKey || !printable(key) {
		fail(w, invalid("Idempotency-Key", "must be 1 to %d printable ASCII characters", maxIdempotencyKey))
		return
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), body...))
	fingerprint := hex.EncodeToString(sum[:])
	scoped := c.Principal.Subject + "\x00" + key // keys belong to the caller who chose them
	if h.replay(w, r, scoped, fingerprint) {
		return
	}
	// Only a call that changes something remembers its answer, and only a change answers 201.
	c.Idempotency = &directory.Idempotency{Key: scoped, Fingerprint: fingerprint, Render: func(v any) directory.Replay {
		b, _ := json.Marshal(v)
		hs := map[string]string{"Content-Type": "application/json"}
		for k, vs := range headers(v) {
			hs[k] = vs[0]
		}
		return directory.Replay{Status: http.StatusCreated, Header: hs, Body: append(b, '\n')}
	}}
	a, err := do(*c, body)
	if errors.Is(err, directory.ErrReplay) && h.replay(w, r, scoped, fingerprint) {
		return
	}
	h.write(w, a, err)
}

// answer is a successful response.
type answer struct {
	status int
	v      any
	header http.Header
}

func (h *Handler) write(w http.ResponseWriter, a answer, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	writeJSON(w, a.status, a.v)
}

// replay answers with a remembered response, if there is one for key; it reports whether it did.
func (h *Handler) replay(w http.ResponseWriter, r *http.Request, key, fingerprint string) bool {
	rep, err := h.replays.Replay(r.Context(), key)
	if fault.Is(err, fault.NotFound) {
		return false
	}
	if err != nil {
		fail(w, err)
		return true
	}
	if rep.Fingerprint != fingerprint {
		writeProblem(w, problemFor(http.StatusUnprocessableEntity,
			"this Idempotency-Key was used for a different request", "Idempotency-Key"))
		return true
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rep.Status)
	_, _ = w.Write(rep.Body)
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

func (h *Handler) members(w http.ResponseWriter, r *http.Request, c directory.Call) {
	p, err := pageOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	items, next, err := h.directory.Members(r.Context(), c, r.PathValue("id"), p)
	if err != nil {
		fail(w, err)
		return
	}
	writeList(w, items, next)
}

func (h *Handler) addMember(w http.ResponseWriter, r *http.Request, c directory.Call) {
	id := r.PathValue("id")
	headers := func(v any) http.Header {
		return http.Header{"Location": {"/groups/" + url.PathEscape(id) + "/members/" + url.PathEscape(v.(directory.Member).Ref())}}
	}
	h.idempotent(w, r, &c, headers, func(c directory.Call, body []byte) (answer, error) {
		var m directory.Member
		if err := directory.Decode("admin", body, &m); err != nil {
			return answer{}, err
		}
		out, added, err := h.directory.AddMember(r.Context(), c, id, m)
		if err != nil {
			return answer{}, err
		}
		status := http.StatusCreated
		if !added {
			status = http.StatusOK
		}
		return answer{status: status, v: out, header: headers(out)}, nil
	})
}

func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request, c directory.Call) {
	if err := h.directory.RemoveMember(r.Context(), c, r.PathValue("id"), r.PathValue("member")); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) expanded(w http.ResponseWriter, r *http.Request, c directory.Call) {
	e, err := h.directory.Expand(r.Context(), c, r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, c directory.Call) {
	p, err := pageOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	var aq directory.AuditQuery
	for field, t := range map[string]*time.Time{"from": &aq.From, "to": &aq.To} {
		if v := q.Get(field); v != "" {
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				fail(w, invalid(field, "must be an RFC 3339 time such as 2026-11-23T09:00:00Z"))
				return
			}
		}
	}
	aq.Actor, aq.Resource = q.Get("actor"), q.Get("resource")
	items, next, err := h.directory.QueryAudit(r.Context(), c, aq, p)
	if err != nil {
		fail(w, err)
		return
	}
	writeList(w, items, next)
}

func (h *Handler) reviewGroups(w http.ResponseWriter, r *http.Request, c directory.Call) {
	rep, err := h.directory.ReviewGroups(r.Context(), c)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *Handler) export(w http.ResponseWriter, r *http.Request, c directory.Call) {
	q := r.URL.Query()
	switch q.Get("format") {
	case "", "json":
		doc, err := h.directory.Export(r.Context(), c)
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Disposition", `attachment; filename="mailroom-directory.json"`)
		writeJSON(w, http.StatusOK, doc)
	case "csv":
		var buf bytes.Buffer
		if err := h.directory.ExportCSV(r.Context(), c, q.Get("kind"), &buf); err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="mailroom-`+q.Get("kind")+`.csv"`)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		_, _ = w.Write(buf.Bytes())
	default:
		fail(w, invalid("format", "must be json or csv"))
	}
}

func (h *Handler) importDirectory(w http.ResponseWriter, r *http.Request, c directory.Call) {
	q := r.URL.Query()
	dryRun := false
	if v := q.Get("dryRun"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(w, invalid("dryRun", "must be true or false"))
			return
		}
		dryRun = b
	}
	body, mt, err := readBody(r, "application/json", "text/csv")
	if err != nil {
		failBody(w, err)
		return
	}
	var doc directory.Document
	if mt == "text/csv" {
		doc, err = directory.ParseCSV(q.Get("kind"), bytes.NewReader(body))
	} else {
		err = directory.Decode("admin", body, &doc)
	}
	if err != nil {
		fail(w, err)
		return
	}
	rep, err := h.directory.Import(r.Context(), c, doc, dryRun)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
