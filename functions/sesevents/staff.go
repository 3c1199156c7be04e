package sesevents

import (
	"context"
	"strings"

	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/sesnotify"
	"github.com/mailroom/mailroom/shared/sla"
)

// StaffMessage is what a Send event says about mail staff sent through SES, for SLA tracking:
// ok is false for mail Mailroom itself sent (it carries Mailroom's message tag: forwards,
// notices, automatic replies), for automatic mail, and for events without the headers that
// thread a reply. SES's events carry the original header fields when the configuration set's
// event destination includes them, which template.yaml's does.
func StaffMessage(r sesnotify.Record) (sla.Message, bool) {
	if r.EventType != sesnotify.EventSend || len(r.Mail.Tags[destinations.TagMessage]) > 0 {
		return sla.Message{}, false
	}
	h := make(mail.Header, 0, len(r.Mail.Headers))
	for _, f := range r.Mail.Headers {
		h = append(h, mail.Field{Name: f.Name, Value: f.Value})
	}
	if !autoreply.Automatic(autoreply.Incoming{Kind: autoreply.KindAcknowledgement, EnvelopeFrom: r.Mail.Source, Header: h}).Reply {
		return sla.Message{}, false
	}
	m := sla.Message{
		MessageID:     strings.Trim(h.Get("Message-Id"), "<> "),
		InReplyTo:     mail.MessageIDs(h.Get("In-Reply-To")),
		References:    mail.MessageIDs(h.Get("References")),
		SESMessageIDs: []string{r.Mail.MessageID},
		At:            r.Mail.Timestamp,
	}
	if c := r.Mail.CommonHeaders; c != nil {
		m.Subject = c.Subject
		if m.MessageID == "" {
			m.MessageID = strings.Trim(c.MessageID, "<> ")
		}
		if len(c.From) > 0 {
			if list, err := mail.ParseAddressList(c.From[0]); err == nil && len(list) > 0 {
				m.From = strings.ToLower(list[0].Address)
			}
		}
	}
	if m.MessageID == "" {
		m.MessageID = r.Mail.MessageID + "@ses"
	}
	if len(m.InReplyTo)+len(m.References) == 0 && m.Subject == "" {
		return sla.Message{}, false
	}
	return m, true
}

// answered applies the staff replies among records to their conversations.
func (h *Handler) answered(ctx context.Context, records []sesnotify.Record) error {
	if h.sla == nil {
		return nil
	}
	for _, r := range records {
		m, ok := StaffMessage(r)
		if !ok {
			continue
		}
		convs, err := h.sla.StaffSent(ctx, m)
		if err != nil {
			return err
		}
		for _, c := range convs {
			h.log.InfoContext(ctx, "conversation answered", "conversation", c.ID, "queue", c.Queue, "sesMessageId", r.Mail.MessageID)
		}
	}
	return nil
}
