package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

// autoReplySetting registers the four routes of one automatic-reply setting kept on a mailbox or
// a group: GET, PUT (create or replace), PATCH (merge patch) and DELETE. The setting's kind
// validates bodies and decides who may read and change it; the directory stores, versions and
// audits it.
func autoReplySetting[T autoreply.OutOfOffice | autoreply.Acknowledgement | autoreply.ClosedNotice](
	h *Handler, path string, kind directory.SettingKind, idOf func(r *http.Request) (string, error),
) {
	d := h.directory
	answer := func(w http.ResponseWriter, status int, s directory.Setting) {
		v, err := autoreply.Of[T](s)
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("ETag", etag(s.Version))
		writeJSON(w, status, v)
	}
	h.handle("GET "+path, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		id, err := idOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		s, err := d.Setting(r.Context(), c, kind, id)
		if err != nil {
			fail(w, err)
			return
		}
		answer(w, http.StatusOK, s)
	})
	h.handle("PUT "+path, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		id, err := idOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		body, _, err := readBody(r, "application/json")
		if err != nil {
			failBody(w, err)
			return
		}
		s, err := d.PutSetting(r.Context(), c, kind, id, body)
		if err != nil {
			fail(w, err)
			return
		}
		// A put stamps the version it replaced plus one, so version 1 is a setting that did not
		// exist before.
		status := http.StatusOK
		if s.Version == 1 {
			status = http.StatusCreated
		}
		answer(w, status, s)
	})
	h.handle("PATCH "+path, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		id, err := idOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		body, _, err := readBody(r, "application/merge-patch+json", "application/json")
		if err != nil {
			failBody(w, err)
			return
		}
		s, err := d.UpdateSetting(r.Context(), c, kind, id, body)
		if err != nil {
			fail(w, err)
			return
		}
		answer(w, http.StatusOK, s)
	})
	h.handle("DELETE "+path, func(w http.ResponseWriter, r *http.Request, c directory.Call) {
		id, err := idOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		if err := d.DeleteSetting(r.Context(), c, kind, id); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// mailboxParam is the {address} of a mailbox's setting, in the form the directory keeps it: the
// settings are keyed by it, and an employee's own address is compared with it.
func mailboxParam(r *http.Request) (string, error) {
	v := r.PathValue("address")
	a, err := directory.NormalizeAddress(v)
	if err != nil {
		return "", invalid("address", "%q is not an address: %v", v, err)
	}
	return a, nil
}

// groupParam is the {id} of a group's setting; the setting's kind checks that the group exists.
func groupParam(r *http.Request) (string, error) { return r.PathValue("id"), nil }

// templateVar is one name a reply template may use, or one function it may call.
type templateVar struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// templateVars are autoreply.Vars as its documentation describes them, for people writing their
// own texts. Location is left out: templates cannot read it.
var templateVars = []templateVar{
	{"SenderName", "The original author's display name; their address when the message gives none."},
	{"SenderAddress", "The original author's address."},
	{"OriginalSubject", "The subject of the message being answered, decoded."},
	{"Recipient", "The address of the mailbox or group that replies."},
	{"Name", "The mailbox's display name or the group's name; Recipient when it has none."},
	{"Until", "When the person is back (out-of-office): the end of the period; without one it is unknown and {{if .Until}} is false."},
	{"PromisedBy", "When a reply is promised (acknowledgement); false in {{if .PromisedBy}} when nothing is promised."},
	{"BusinessHours", "When the team works, as the calendar says: \"Mon–Fri 09:00–18:00 Asia/Kuala_Lumpur\"."},
	{"Successor", "Who to write to instead of a closed mailbox; empty when nobody."},
}

// templateFuncs are the functions of autoreply.Parse that write times.
var templateFuncs = []templateVar{
	{"date", "{{date .Until}}: the day in the template's language, \"Tuesday, 24 November 2026\"; in the time zone of the mailbox or group."},
	{"datetime", "{{datetime .PromisedBy}}: the day and time with its UTC offset, \"Tuesday, 24 November 2026, 09:00 (UTC+8)\"."},
}

var autoReplyKinds = []string{autoreply.KindOutOfOffice, autoreply.KindAcknowledgement, autoreply.KindClosed}

// shippedTemplate is one template Mailroom ships, with its kind.
type shippedTemplate struct {
	Kind string `json:"kind"`
	autoreply.Template
}

// autoReplyTemplates answers GET /autoreplies/templates: the shipped texts of each kind in each
// language (or those the query's kind and language name), the languages, and what a template may
// use. Anyone with a role: employees and group owners write their own texts from these.
func (h *Handler) autoReplyTemplates(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.autoReplyTemplates"
	if err := c.Principal.Allow(op, false, directory.Roles...); err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	kinds, langs := autoReplyKinds, autoreply.Languages()
	if k := q.Get("kind"); k != "" {
		if !slices.Contains(autoReplyKinds, k) {
			fail(w, invalid("kind", "must be one of %s", strings.Join(autoReplyKinds, ", ")))
			return
		}
		kinds = []string{k}
	}
	if l := q.Get("language"); l != "" {
		i := slices.IndexFunc(langs, func(n string) bool { return strings.EqualFold(n, l) })
		if i < 0 {
			fail(w, invalid("language", "must be one of %s", strings.Join(langs, ", ")))
			return
		}
		langs = langs[i : i+1]
	}
	out := []shippedTemplate{}
	for _, k := range kinds {
		for _, l := range langs {
			if t, ok := autoreply.Defaults(k, l); ok {
				out = append(out, shippedTemplate{Kind: k, Template: t})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"templates": out, "languages": autoreply.Languages(), "variables": templateVars, "functions": templateFuncs,
	})
}

// autoReplyRules answers GET /autoreplies/rules: the rules of when no automatic reply is sent, in
// the order they are applied.
func (h *Handler) autoReplyRules(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.autoReplyRules"
	if err := c.Principal.Allow(op, false, directory.Roles...); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": autoreply.Rules()})
}

// previewReply is one automatic reply a previewed message gets, or would get but for its verdict.
type previewReply struct {
	Kind      string            `json:"kind"`
	Recipient string            `json:"recipient"`
	Responder string            `json:"responder"`
	From      mail.Address      `json:"from"`
	To        string            `json:"to"`
	Verdict   autoreply.Verdict `json:"verdict"`
	Language  string            `json:"language,omitempty"`
	Subject   string            `json:"subject,omitempty"`
	Body      string            `json:"body,omitempty"`
}

// previewAutoReplies answers POST /autoreplies/preview: the body is a raw message and the query
// its envelope, as for explain, plus limits=false to leave out how often each sender was already
// answered. The message is routed with the stored directory and rules, and its automatic replies
// planned and rendered exactly as the inbound function would; nothing is sent or recorded.
func (h *Handler) previewAutoReplies(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.previewAutoReplies"
	in, err := explainEnvelope(r)
	if err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	limits := true
	if v := q.Get("limits"); v != "" {
		if limits, err = strconv.ParseBool(v); err != nil {
			fail(w, invalid("limits", "must be true or false"))
			return
		}
	}
	// Before the body is read: who may preview depends only on the recipients.
	if err := h.mayPreview(r.Context(), c.Principal, in.Recipients); err != nil {
		fail(w, err)
		return
	}
	msg, m, dec, ok := h.decideBody(w, r, op, in)
	if !ok {
		return
	}
	planner := *h.replies
	if !limits {
		planner.Ledger = nil
	}
	replies, err := planner.Plan(r.Context(), msg, m, dec)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]previewReply, len(replies))
	for i, rp := range replies {
		out[i] = previewReply{Kind: rp.Kind, Recipient: rp.Recipient, Responder: rp.Responder, From: rp.From, To: rp.To,
			Verdict: rp.Verdict, Language: rp.Language, Subject: rp.Subject, Body: rp.Body}
	}
	writeJSON(w, http.StatusOK, map[string]any{"replies": out})
}

// mayPreview decides who may preview the replies to mail for these recipients: admins and
// auditors for anyone; otherwise each recipient must be the caller's own address (employees) or
// an address of a group they own. Anything else is refused: a preview shows what a mailbox's
// out-of-office says, and whether it is on.
func (h *Handler) mayPreview(ctx context.Context, p directory.Principal, to []string) error {
	const op = "admin.previewAutoReplies"
	if p.Has(directory.RoleAdmin) || p.Has(directory.RoleAuditor) {
		return p.Allow(op, false, directory.RoleAdmin, directory.RoleAuditor)
	}
	refused := fault.New(fault.Forbidden, op, "you may preview automatic replies only to your own address and to the groups you own")
	if p.Email == "" {
		return refused
	}
	for _, addr := range to {
		if addr == p.Email {
			if err := p.Allow(op, false, directory.RoleEmployee); err != nil {
				return err
			}
			continue
		}
		owner, err := h.directory.Store.AddressOwner(ctx, addr)
		if fault.Is(err, fault.NotFound) {
			return refused
		}
		if err != nil {
			return err
		}
		if owner.Kind != directory.KindGroup {
			return refused
		}
		g, err := h.directory.Store.Group(ctx, owner.ID)
		if fault.Is(err, fault.NotFound) {
			return refused
		}
		if err != nil {
			return err
		}
		if !slices.Contains(g.Owners, p.Email) {
			return refused
		}
		if err := p.Allow(op, false, directory.RoleGroupManager, directory.RoleEmployee); err != nil {
			return err
		}
	}
	return nil
}
