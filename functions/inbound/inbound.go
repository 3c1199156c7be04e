// Package inbound is the Lambda that SES invokes for every received message, after its receipt
// rule has stored the raw message in S3. It archives the message; later capabilities (routing,
// auto-replies, SLA tracking) hang off the same event. The package is importable so the local
// stack runs exactly this handler in-process; bootstrap/ is the Lambda entry point.
package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/s3store"
)

// Config is read from the environment once, at start.
type Config struct {
	// MailBucket holds raw inbound mail (written by SES) and the archive.
	MailBucket string `env:"MAIL_BUCKET,required"`
	// InboundPrefix is the receipt rule's S3 object key prefix; SES writes InboundPrefix+messageId.
	InboundPrefix string `env:"INBOUND_PREFIX" envDefault:"inbound/"`
	// ArchivePrefix is where archived originals go.
	ArchivePrefix string `env:"ARCHIVE_PREFIX" envDefault:"archive/"`
	// ArchiveTable holds archive metadata.
	ArchiveTable string `env:"ARCHIVE_TABLE,required"`
}

// Handler turns SES receipt events into archive calls.
type Handler struct {
	cfg     Config
	archive *archive.Service
	log     *slog.Logger
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) *Handler {
	return &Handler{
		cfg: cfg,
		archive: &archive.Service{
			Objects: s3store.New(clients.S3, cfg.MailBucket),
			Index:   dynamo.NewArchiveIndex(clients.DynamoDB, cfg.ArchiveTable),
			Prefix:  cfg.ArchivePrefix,
			Now:     time.Now,
		},
		log: log,
	}
}

// Handle archives every message in the event. It returns an error when any record could not be
// archived, so Lambda retries the invocation and, after its retries, sends the event to the
// on-failure destination: the raw message stays in S3 and nothing SES received is lost. Records
// already archived are skipped on the retry.
func (h *Handler) Handle(ctx context.Context, ev events.SimpleEmailEvent) (events.SimpleEmailDisposition, error) {
	var errs []error
	for _, rec := range ev.Records {
		in, err := h.received(rec)
		if err == nil {
			var res archive.Result
			res, err = h.archive.Archive(ctx, in)
			if err == nil {
				h.log.InfoContext(ctx, "archived",
					"sesMessageId", res.Record.ID, "key", res.Record.Key, "size", res.Record.Size,
					"attachments", len(res.Record.Attachments), "flags", res.Record.Flags,
					"duplicate", res.Duplicate)
				continue
			}
		}
		h.log.ErrorContext(ctx, "archive failed",
			"sesMessageId", rec.SES.Mail.MessageID, "kind", fault.KindOf(err).String(), "err", err)
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return events.SimpleEmailDisposition{}, fmt.Errorf("inbound: %w", errors.Join(errs...))
	}
	return events.SimpleEmailDisposition{Disposition: events.SimpleEmailContinue}, nil
}

// received reads what archiving needs from one SES record. The Lambda action's event does not
// name the S3 object; the receipt rule's S3 action wrote it to InboundPrefix + messageId.
func (h *Handler) received(rec events.SimpleEmailRecord) (archive.Received, error) {
	const op = "inbound.received"
	if rec.EventSource != "aws:ses" {
		return archive.Received{}, fault.InvalidField(op, "eventSource", "%q is not an SES receipt event", rec.EventSource)
	}
	m, r := rec.SES.Mail, rec.SES.Receipt
	if m.MessageID == "" {
		return archive.Received{}, fault.InvalidField(op, "ses.mail.messageId", "missing")
	}
	at := r.Timestamp
	if at.IsZero() {
		at = m.Timestamp
	}
	recipients := r.Recipients
	if len(recipients) == 0 {
		recipients = m.Destination
	}
	return archive.Received{
		ID:           m.MessageID,
		RawKey:       h.cfg.InboundPrefix + m.MessageID,
		ReceivedAt:   at,
		EnvelopeFrom: m.Source,
		Recipients:   recipients,
		Source:       "ses",
		Verdicts: archive.Verdicts{
			Spam:        r.SpamVerdict.Status,
			Virus:       r.VirusVerdict.Status,
			SPF:         r.SPFVerdict.Status,
			DKIM:        r.DKIMVerdict.Status,
			DMARC:       r.DMARCVerdict.Status,
			DMARCPolicy: r.DMARCPolicy,
		},
	}, nil
}
