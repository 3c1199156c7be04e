package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// rules are routing rules kept as directory settings: versioned, audited, validated by routing.
type rules struct {
	d    *directory.Service
	kind directory.SettingKind
}

func (x rules) list(ctx context.Context, c directory.Call, _ directory.Page) ([]routing.Rule, string, error) {
	settings, _, err := x.d.Settings(ctx, c, x.kind)
	if err != nil {
		return nil, "", err
	}
	out := make([]routing.Rule, 0, len(settings))
	for _, s := range settings {
		r, err := routing.RuleOf(s)
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b routing.Rule) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, "", nil
}

func (x rules) create(ctx context.Context, c directory.Call, r routing.Rule) (routing.Rule, error) {
	if r.ID == "" {
		// Rule ids are at most 63 characters, one fewer than group ids.
		r.ID = strings.TrimRight(truncate(directory.GroupID(r.Name), 63), "-")
	}
	if r.ID == "" {
		return routing.Rule{}, fault.InvalidField("routing.CreateRule", "name", "is required")
	}
	body, err := json.Marshal(r)
	if err != nil {
		return routing.Rule{}, fault.Wrap(fault.Internal, "admin.rules", err)
	}
	s, err := x.d.CreateSetting(ctx, c, x.kind, r.ID, body)
	if err != nil {
		return routing.Rule{}, err
	}
	return routing.RuleOf(s)
}

func (x rules) get(ctx context.Context, c directory.Call, id string) (routing.Rule, error) {
	s, err := x.d.Setting(ctx, c, x.kind, id)
	if err != nil {
		return routing.Rule{}, err
	}
	return routing.RuleOf(s)
}

func (x rules) update(ctx context.Context, c directory.Call, id string, patch []byte) (routing.Rule, error) {
	s, err := x.d.UpdateSetting(ctx, c, x.kind, id, patch)
	if err != nil {
		return routing.Rule{}, err
	}
	return routing.RuleOf(s)
}

func (x rules) delete(ctx context.Context, c directory.Call, id string) error {
	return x.d.DeleteSetting(ctx, c, x.kind, id)
}

// maxExplainRecipients bounds one explain request.
const maxExplainRecipients = 50

// explain answers POST /routing/explain: the body is a raw message (message/rfc822); the query
// names the envelope: to (repeatable), from, SES verdicts (spf, dkim, dmarc, spam, virus; PASS
// when not given) and at (RFC 3339, the receipt time; now when not given). It decides exactly as
// the inbound function does and sends nothing. Admins and auditors.
func (h *Handler) explain(w http.ResponseWriter, r *http.Request, c directory.Call) {
	const op = "admin.explain"
	if err := c.Principal.Allow(op, false, directory.RoleAdmin, directory.RoleAuditor); err != nil {
		fail(w, err)
		return
	}
	in, err := explainEnvelope(r)
	if err != nil {
		fail(w, err)
		return
	}
	msg, _, d, ok := h.decideBody(w, r, op, in)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"facts": msg.Facts, "decision": d})
}

// decideBody reads a raw message from the request body and decides it with the envelope in:
// as the inbound function would, sending nothing. The envelope sender is the message's From when
// the query names none. It answers the request itself when it fails.
func (h *Handler) decideBody(w http.ResponseWriter, r *http.Request, op string, in routing.Envelope) (routing.Message, *mail.Message, routing.Decision, bool) {
	body, _, err := readBody(r, "message/rfc822")
	if err != nil {
		failBody(w, err)
		return routing.Message{}, nil, routing.Decision{}, false
	}
	m, err := mail.Parse(bytes.NewReader(body))
	if err != nil {
		fail(w, fault.Wrap(fault.Internal, op, err))
		return routing.Message{}, nil, routing.Decision{}, false
	}
	if in.EnvelopeFrom == "" && len(m.From) > 0 && !r.URL.Query().Has("from") {
		in.EnvelopeFrom = m.From[0].Address
	}
	msg, err := routing.MessageOf(r.Context(), h.directory.Store, in, m)
	if err != nil {
		fail(w, err)
		return routing.Message{}, nil, routing.Decision{}, false
	}
	d, err := h.router.Decide(r.Context(), msg)
	if err != nil {
		fail(w, err)
		return routing.Message{}, nil, routing.Decision{}, false
	}
	return msg, m, d, true
}

func explainEnvelope(r *http.Request) (routing.Envelope, error) {
	q := r.URL.Query()
	in := routing.Envelope{ID: "explain", EnvelopeFrom: q.Get("from"), ReceivedAt: time.Now().UTC()}
	for _, to := range q["to"] {
		addr, err := directory.NormalizeAddress(to)
		if err != nil {
			return in, invalid("to", "%q is not an address: %v", to, err)
		}
		in.Recipients = append(in.Recipients, addr)
	}
	if len(in.Recipients) == 0 {
		return in, invalid("to", "name at least one envelope recipient (?to=address)")
	}
	if len(in.Recipients) > maxExplainRecipients {
		return in, invalid("to", "at most %d recipients", maxExplainRecipients)
	}
	if at := q.Get("at"); at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return in, invalid("at", "must be an RFC 3339 time such as 2026-11-23T09:30:00Z")
		}
		in.ReceivedAt = t.UTC()
	}
	for _, v := range []struct {
		name string
		dst  *string
	}{{"spam", &in.Verdicts.Spam}, {"virus", &in.Verdicts.Virus}, {"spf", &in.Verdicts.SPF}, {"dkim", &in.Verdicts.DKIM}, {"dmarc", &in.Verdicts.DMARC}} {
		s := strings.ToUpper(q.Get(v.name))
		if s == "" {
			s = routing.VerdictPass
		}
		switch s {
		case routing.VerdictPass, routing.VerdictFail, routing.VerdictGray, routing.VerdictProcessingFailed, routing.VerdictDisabled:
			*v.dst = s
		default:
			return in, invalid(v.name, "must be PASS, FAIL, GRAY, PROCESSING_FAILED or DISABLED")
		}
	}
	return in, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
