// Package sesevents is the Lambda that Amazon SES's configuration-set events reach, through
// EventBridge or SNS. It records what became of each message at each destination and suspends
// destinations that bounce hard or complain (shared/destinations). The package is importable so the
// local stack runs exactly this handler in-process; bootstrap/ is the Lambda entry point.
package sesevents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sla"
)

// Config is read from the environment once, at start.
type Config struct {
	// StateTable holds destination outcomes and suspensions.
	StateTable string `env:"STATE_TABLE,required"`
	// NotifyTo is the administrators' address for suspension notices; empty, notices are only logged.
	NotifyTo string `env:"NOTIFY_TO"`
	// NotifyFrom sends the notices, an address SES may send from; empty, NotifyTo itself.
	NotifyFrom string `env:"NOTIFY_FROM"`
	// DirectoryTable holds the SLA policies and calendars: a staff reply sent through SES
	// answers its conversation.
	DirectoryTable string `env:"DIRECTORY_TABLE"`
}

// Handler turns SES events into outcomes for the destinations service.
type Handler struct {
	svc *destinations.Service
	// sla sees staff replies sent through SES; nil when the function has no directory table.
	sla *sla.Service
	log *slog.Logger
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) (*Handler, error) {
	var notifier destinations.Notifier
	if cfg.NotifyTo != "" {
		to, err := destinations.Normalize(cfg.NotifyTo)
		if err != nil {
			return nil, fmt.Errorf("NOTIFY_TO %q: %w", cfg.NotifyTo, err)
		}
		from := to
		if cfg.NotifyFrom != "" {
			if from, err = destinations.Normalize(cfg.NotifyFrom); err != nil {
				return nil, fmt.Errorf("NOTIFY_FROM %q: %w", cfg.NotifyFrom, err)
			}
		}
		notifier = NewSESNotifier(clients.SES, from, to)
	}
	svc := &destinations.Service{
		Store:    dynamo.NewDestinations(clients.DynamoDB, cfg.StateTable),
		Notifier: logged{next: notifier, log: log},
		Now:      time.Now,
	}
	h := NewHandler(svc, log)
	if cfg.DirectoryTable != "" {
		h.WithSLA(&sla.Service{
			Store:    dynamo.NewConversations(clients.DynamoDB, cfg.StateTable),
			Policies: sla.Policies{Settings: dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, "")},
			Now:      time.Now,
		})
	}
	return h, nil
}

// WithSLA makes staff replies seen in send events answer their conversations.
func (h *Handler) WithSLA(svc *sla.Service) *Handler {
	h.sla = svc
	return h
}

// NewHandler serves svc.
func NewHandler(svc *destinations.Service, log *slog.Logger) *Handler {
	return &Handler{svc: svc, log: log}
}

// Handle records the outcomes in one EventBridge or SNS event. An event it cannot read, or whose
// outcomes are invalid, is logged and acknowledged: retrying it would fail the same way, forever.
// Anything else that fails (DynamoDB, the notice) returns an error, so Lambda retries the event and,
// after its retries, sends it to the on-failure destination; outcomes recorded before the failure
// are recognised on the retry and not counted twice.
func (h *Handler) Handle(ctx context.Context, ev json.RawMessage) error {
	records, err := ParseRecords(ev)
	if err != nil {
		h.log.WarnContext(ctx, "SES event skipped", "err", err)
		return nil
	}
	if err := h.answered(ctx, records); err != nil {
		h.log.ErrorContext(ctx, "SLA tracking failed", "kind", fault.KindOf(err).String(), "err", err)
		return fmt.Errorf("sesevents: %w", err)
	}
	var list []destinations.Outcome
	for _, r := range records {
		list = append(list, outcomes(r)...)
	}
	if len(list) == 0 {
		return nil
	}
	first := list[0]
	attrs := []any{"sesMessageId", first.SESMessageID, "type", first.Type, "destinations", len(list)}
	if first.BounceType != "" {
		attrs = append(attrs, "bounceType", first.BounceType)
	}
	err = h.svc.Record(ctx, list)
	switch {
	case err == nil:
		h.log.InfoContext(ctx, "outcomes recorded", attrs...)
		return nil
	case fault.Is(err, fault.Invalid):
		h.log.WarnContext(ctx, "SES event skipped", append(attrs, "err", err)...)
		return nil
	}
	h.log.ErrorContext(ctx, "recording outcomes failed", append(attrs, "kind", fault.KindOf(err).String(), "err", err)...)
	return fmt.Errorf("sesevents: %w", err)
}
