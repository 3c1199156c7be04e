// Package slasweep is the scheduled Lambda that watches service levels: every 15 minutes it finds
// the conversations due a warning or past their deadline, tells the policy's escalation
// contacts, and sends a customer whose answer is late one holding reply. The package is
// importable so tests and the local stack run exactly this handler; bootstrap/ is the Lambda
// entry point.
package slasweep

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/compose"
	"github.com/mailroom/mailroom/shared/delivery"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/sesmail"
	"github.com/mailroom/mailroom/shared/sla"
)

// Config is read from the environment once, at start.
type Config struct {
	// DirectoryTable holds the policies, calendars, groups and mailboxes.
	DirectoryTable string `env:"DIRECTORY_TABLE,required"`
	// StateTable holds the conversations and the delivery ledger that sends each notice once.
	StateTable string `env:"STATE_TABLE,required"`
	// ConfigurationSet is named on the notices, so their outcomes are recorded like any send.
	ConfigurationSet string `env:"CONFIGURATION_SET"`
	// LinkBaseURL is the admin API's URL; notices link to the conversation there.
	LinkBaseURL string `env:"LINK_BASE_URL"`
	// Batch is the most conversations one run handles; the next run takes the rest.
	Batch int `env:"BATCH" envDefault:"500"`
}

// Handler runs sweeps.
type Handler struct {
	svc    *sla.Service
	notify *Notifier
	batch  int
	log    *slog.Logger
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) *Handler {
	dir := dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, "")
	svc := &sla.Service{
		Store:    dynamo.NewConversations(clients.DynamoDB, cfg.StateTable),
		Policies: sla.Policies{Settings: dir},
		Now:      time.Now,
	}
	return NewHandler(svc, &Notifier{
		Directory: dir,
		Policies:  svc.Policies,
		Delivery: &delivery.Service{
			Sender:    sesmail.New(clients.SES, cfg.ConfigurationSet),
			Ledger:    dynamo.NewLedger(clients.DynamoDB, cfg.StateTable),
			Suspended: delivery.SuspendedSet(&destinations.Service{Store: dynamo.NewDestinations(clients.DynamoDB, cfg.StateTable)}),
			Now:       time.Now,
		},
		LinkBase: cfg.LinkBaseURL,
	}, cfg.Batch, log)
}

// NewHandler runs sweeps of svc that notify through n.
func NewHandler(svc *sla.Service, n *Notifier, batch int, log *slog.Logger) *Handler {
	return &Handler{svc: svc, notify: n, batch: batch, log: log}
}

// Handle runs one sweep; the scheduled event's content does not matter. An error makes the
// scheduler's retry, and the next run, pick up what is left; nothing is sent twice.
func (h *Handler) Handle(ctx context.Context) error {
	rep, err := h.svc.Sweep(ctx, h.notify, h.batch)
	h.log.InfoContext(ctx, "sla sweep", "looked", rep.Looked, "warnings", rep.Warnings,
		"breaches", rep.Breaches, "holding", rep.Holding, "skipped", rep.Skipped)
	if err != nil {
		h.log.ErrorContext(ctx, "sla sweep failed", "kind", fault.KindOf(err).String(), "err", err)
	}
	return err
}

// Notifier sends escalation notices and holding replies through SES, each once: the delivery
// ledger keeps every notice under its conversation, kind and clock.
type Notifier struct {
	Directory interface {
		Mailbox(ctx context.Context, address string) (directory.Mailbox, error)
		Group(ctx context.Context, id string) (directory.Group, error)
	}
	Policies sla.Policies
	Delivery *delivery.Service
	// LinkBase is the admin API's URL, for the link to the conversation; "" for none.
	LinkBase string
}

var _ sla.Notifier = (*Notifier)(nil)

// queue is who owes the answer: the group's or mailbox's name and address (the first of a
// group's), and who to tell when the policy names nobody: the group's owners, the mailbox's
// manager.
func (n *Notifier) queue(ctx context.Context, q string) (mail.Address, []string, error) {
	kind, id, _ := strings.Cut(q, ":")
	switch kind {
	case directory.KindGroup:
		g, err := n.Directory.Group(ctx, id)
		if err != nil {
			return mail.Address{}, nil, err
		}
		if len(g.Addresses) == 0 {
			return mail.Address{}, nil, fault.New(fault.Invalid, "slasweep.queue", "group %s has no address to write from", id)
		}
		return mail.Address{Name: g.Name, Address: g.Addresses[0]}, g.Owners, nil
	case directory.KindMailbox:
		mb, err := n.Directory.Mailbox(ctx, id)
		if err != nil {
			return mail.Address{}, nil, err
		}
		var to []string
		if mb.Manager != "" {
			to = []string{mb.Manager}
		}
		return mail.Address{Name: mb.DisplayName, Address: mb.Address}, to, nil
	}
	return mail.Address{}, nil, fault.New(fault.Internal, "slasweep.queue", "%q is not a queue", q)
}

// key names a notice in the ledger: one per conversation, kind and clock start.
func key(c sla.Conversation, kind string) (message, via string) {
	return "sla-" + c.ID, fmt.Sprintf("sla-%s-%s-%d", kind, c.Target, c.Since.Unix())
}

// Escalate tells the escalation contacts.
func (n *Notifier) Escalate(ctx context.Context, c sla.Conversation, p sla.Policy, kind string) error {
	from, owners, err := n.queue(ctx, c.Queue)
	if err != nil {
		return err
	}
	to := p.Escalation
	if len(to) == 0 {
		to = owners
	}
	if len(to) == 0 {
		return nil // nobody to tell; the report shows the breach
	}
	cal, err := n.Policies.Calendar(ctx, p)
	if err != nil {
		return err
	}
	target := "first response"
	if c.Target == sla.TargetNext {
		target = "next response"
	}
	d := n.Delivery
	o := compose.EscalationOptions{
		Generated: d.Generated(from.Address), Queue: from, To: to, Breach: kind == sla.NoticeBreach,
		Token: c.Token(), Customer: c.Customer, Subject: c.Subject, Policy: p.Name, Target: target,
		Opened: c.OpenedAt, Due: c.Due, Waited: c.Used + cal.Between(c.Since, d.Generated(from.Address).Now()),
	}
	o.Zone = cal.Location()
	if n.LinkBase != "" {
		o.Link = strings.TrimRight(n.LinkBase, "/") + "/conversations/" + c.ID
	}
	var buf bytes.Buffer
	if err := compose.Escalation(&buf, o); err != nil {
		return err
	}
	message, via := key(c, kind)
	_, _, err = d.SendGenerated(ctx, delivery.Message{ID: message}, via, from.Address, to, buf.Bytes())
	return err
}

// Hold sends the customer the holding reply, in their language, threaded to their last message.
func (n *Notifier) Hold(ctx context.Context, c sla.Conversation, p sla.Policy, by time.Time) error {
	from, _, err := n.queue(ctx, c.Queue)
	if err != nil {
		return err
	}
	cal, err := n.Policies.Calendar(ctx, p)
	if err != nil {
		return err
	}
	t, ok := autoreply.Defaults(autoreply.KindHolding, autoreply.Choose("", c.Language, ""))
	if !ok {
		return fault.New(fault.Internal, "slasweep.Hold", "no holding text")
	}
	tmpl, err := autoreply.Parse(t)
	if err != nil {
		return fault.Wrap(fault.Internal, "slasweep.Hold", err)
	}
	subject, body, err := tmpl.Render(autoreply.Vars{
		SenderAddress: c.Customer, OriginalSubject: c.Subject, Recipient: from.Address, Name: from.Name,
		PromisedBy: by, BusinessHours: cal.String(), Location: cal.Location(),
	})
	if err != nil {
		return err
	}
	if p.SubjectToken {
		subject += " " + c.Token()
	}
	d := n.Delivery
	var buf bytes.Buffer
	err = compose.AutoReply(&buf, compose.AutoReplyOptions{
		Generated: d.Generated(from.Address), From: from, To: c.Customer, Subject: subject, Body: body,
		InReplyTo: c.LastMessageID, Language: tmpl.Language(),
	})
	if err != nil {
		return err
	}
	message, via := key(c, "holding")
	_, _, err = d.SendGenerated(ctx, delivery.Message{ID: message}, via, from.Address, []string{c.Customer}, buf.Bytes())
	return err
}
