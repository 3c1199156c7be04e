// Package inbound is the Lambda that SES invokes for every received message, after its receipt
// rule has stored the raw message in S3. It archives the message, decides where it goes (routing)
// and carries the decision out (delivery); later capabilities (auto-replies, SLA tracking) hang
// off the same event. The package is importable so the local stack runs exactly this handler
// in-process; bootstrap/ is the Lambda entry point.
package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/compose"
	"github.com/mailroom/mailroom/shared/delivery"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/links"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/moderation"
	"github.com/mailroom/mailroom/shared/routing"
	"github.com/mailroom/mailroom/shared/s3store"
	"github.com/mailroom/mailroom/shared/sesmail"
	"github.com/mailroom/mailroom/shared/sla"
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
	// DirectoryTable holds the directory and the routing rules.
	DirectoryTable string `env:"DIRECTORY_TABLE,required"`
	// StateTable holds delivery records and loop marks.
	StateTable string `env:"STATE_TABLE,required"`
	// ConfigurationSet is named on every send so SES reports each destination's outcome.
	ConfigurationSet string `env:"CONFIGURATION_SET"`
	// MaxFanOut caps the destinations one recipient (a group) may reach.
	MaxFanOut int `env:"MAX_FANOUT" envDefault:"20000"`
	// LinkBaseURL is the admin API's URL: the links in moderation requests open pages there.
	LinkBaseURL string `env:"LINK_BASE_URL"`
	// HoldDays is how long mail waits for a group's moderators.
	HoldDays int `env:"HOLD_DAYS" envDefault:"14"`
	// MaxSendBytes is the largest raw message SES takes (40 MB once base64-encoded); a larger one
	// is replaced by a notice with a link.
	MaxSendBytes int64 `env:"MAX_SEND_BYTES" envDefault:"31457280"`
	// AutoReplyCap is the most automatic replies one mailbox or group sends one sender within
	// AutoReplyWindow, whatever its settings: a stop to reply loops with systems that break
	// the rules.
	AutoReplyCap    int           `env:"AUTOREPLY_CAP" envDefault:"3"`
	AutoReplyWindow time.Duration `env:"AUTOREPLY_WINDOW" envDefault:"24h"`
	// JournalAddresses receive a copy of what staff send (their mail system's journal, or a Bcc):
	// a copy that replies in a conversation answers it.
	JournalAddresses []string `env:"JOURNAL_ADDRESSES" envSeparator:","`
}

// Handler turns SES receipt events into archive, routing and delivery calls.
type Handler struct {
	cfg      Config
	archive  *archive.Service
	objects  *s3store.Store
	dir      *dynamo.Directory
	router   *routing.Router
	delivery *delivery.Service
	holds    *moderation.Service
	replies  *autoreply.Planner
	sla      *sla.Service
	log      *slog.Logger
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) *Handler {
	objects := s3store.New(clients.S3, cfg.MailBucket)
	dir := dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, "")
	h := &Handler{
		cfg:     cfg,
		objects: objects,
		dir:     dir,
		archive: &archive.Service{
			Objects: objects,
			Index:   dynamo.NewArchiveIndex(clients.DynamoDB, cfg.ArchiveTable),
			Prefix:  cfg.ArchivePrefix,
			Now:     time.Now,
		},
		router: &routing.Router{
			Directory: dir,
			Rules:     routing.StoredRules{Store: dir},
			MaxFanOut: cfg.MaxFanOut,
			Closed:    autoreply.ClosedNotices{Settings: dir},
		},
		delivery: &delivery.Service{
			Sender:    sesmail.New(clients.SES, cfg.ConfigurationSet),
			Suspended: delivery.SuspendedSet(&destinations.Service{Store: dynamo.NewDestinations(clients.DynamoDB, cfg.StateTable)}),
			Ledger:    dynamo.NewLedger(clients.DynamoDB, cfg.StateTable),
			Links:     objects,
			MaxSize:   cfg.MaxSendBytes,
			Now:       time.Now,
		},
		replies: &autoreply.Planner{
			Settings:  dir,
			Directory: dir,
			Ledger:    dynamo.NewAutoReplies(clients.DynamoDB, cfg.StateTable),
			Limits:    autoreply.Limits{Cap: cfg.AutoReplyCap, Window: cfg.AutoReplyWindow},
		},
		sla: &sla.Service{
			Store:    dynamo.NewConversations(clients.DynamoDB, cfg.StateTable),
			Policies: sla.Policies{Settings: dir},
			Now:      time.Now,
		},
		log: log,
	}
	// An acknowledgement promises what the group's SLA policy computes, where it has one.
	h.replies.Promise = h.sla
	// One key signs every link Mailroom writes; the state table keeps it.
	signer := &links.Signer{Now: time.Now, Key: func(ctx context.Context) ([]byte, error) {
		return dynamo.LinkKey(ctx, clients.DynamoDB, cfg.StateTable)
	}}
	h.holds = &moderation.Service{
		Store:  dynamo.NewHolds(clients.DynamoDB, cfg.StateTable),
		Groups: dir,
		Sender: h.delivery.Sender,
		Links:  &moderation.Links{Base: cfg.LinkBaseURL, Signer: signer},
		TTL:    time.Duration(cfg.HoldDays) * 24 * time.Hour,
	}
	if cfg.LinkBaseURL != "" {
		// Links to originals go through the admin API, which checks them and hands out a
		// download then: they work for as long as they say, unlike a presigned URL, which
		// dies with the function's temporary credentials.
		h.delivery.Links = &links.Originals{Base: cfg.LinkBaseURL, Signer: signer}
	}
	return h
}

// Handle archives, routes and delivers every message in the event. It returns an error when any
// record could not be archived or delivered, so Lambda retries the invocation and, after its
// retries, sends the event to the on-failure destination: the raw message stays in S3 and nothing
// SES received is lost. A retry archives nothing twice and sends nothing twice (the delivery
// ledger remembers every send).
func (h *Handler) Handle(ctx context.Context, ev events.SimpleEmailEvent) (events.SimpleEmailDisposition, error) {
	var errs []error
	for _, rec := range ev.Records {
		if err := h.handle(ctx, rec); err != nil {
			h.log.ErrorContext(ctx, "inbound failed",
				"sesMessageId", rec.SES.Mail.MessageID, "kind", fault.KindOf(err).String(), "err", err)
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return events.SimpleEmailDisposition{}, fmt.Errorf("inbound: %w", errors.Join(errs...))
	}
	return events.SimpleEmailDisposition{Disposition: events.SimpleEmailContinue}, nil
}

func (h *Handler) handle(ctx context.Context, rec events.SimpleEmailRecord) error {
	in, err := h.received(rec)
	if err != nil {
		return err
	}
	// Routing decides before the record is written, so labels, priority and a quarantine flag
	// are stored with it. A routing failure does not stop archiving: the record is flagged and
	// the error returned, so the retry routes again.
	var (
		dec    routing.Decision
		facts  routing.Message
		decErr error
	)
	res, err := h.archive.Classify(ctx, in, func(ctx context.Context, m *mail.Message, r *archive.Record) error {
		facts, dec, decErr = h.decide(ctx, in, m)
		if decErr != nil {
			r.Flags = append(r.Flags, "routing-deferred")
			return nil
		}
		r.Labels, r.Priority, r.SLA = dec.Labels, dec.Priority, dec.SLA
		r.Groups = deliveredGroups(dec)
		if dec.Quarantined {
			r.Flags = append(r.Flags, "quarantined")
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "archived",
		"sesMessageId", res.Record.ID, "key", res.Record.Key, "size", res.Record.Size,
		"attachments", len(res.Record.Attachments), "flags", res.Record.Flags,
		"duplicate", res.Duplicate)
	if res.Duplicate {
		facts, dec, decErr = h.decide(ctx, in, res.Message)
	}
	if decErr != nil {
		return decErr
	}
	dm := h.deliveryMessage(in, res, facts.Internal)
	rep, err := h.delivery.Deliver(ctx, dm, dec)
	h.log.InfoContext(ctx, "routed",
		"sesMessageId", res.Record.ID, "recipients", outcomes(dec), "forwards", len(dec.Forwards),
		"sends", len(rep.Sent), "skipped", rep.Skipped, "bounces", rep.Bounced, "held", len(dec.Holds),
		"oversize", rep.Oversize, "unsettled", rep.Unsettled)
	convs, tErr := h.track(ctx, in, res, facts, dec, rep)
	return errors.Join(err, h.hold(ctx, in, res, dec), tErr, h.reply(ctx, dm, res, facts, dec, convs))
}

// deliveredGroups are the groups the message went to: recipients that are a group (by its address
// or an alias of it) and were delivered, not held, refused or looped. The archive lists the
// message under each.
func deliveredGroups(dec routing.Decision) []string {
	var out []string
	for _, rc := range dec.Recipients {
		if rc.Kind == directory.KindGroup && rc.Outcome == routing.Deliver && rc.Target != "" && !slices.Contains(out, rc.Target) {
			out = append(out, rc.Target)
		}
	}
	return out
}

// track opens or continues the SLA conversations of the queues the message was delivered to,
// and answers them when a colleague's reply reaches a queue or a journal address. It returns the
// conversation of each queue, by queue ("group:support"). Mail a machine sent is neither a
// request nor an answer; spam and viruses are no requests.
func (h *Handler) track(ctx context.Context, in archive.Received, res archive.Result, facts routing.Message, dec routing.Decision, rep delivery.Report) (map[string]string, error) {
	m := res.Message
	if v := autoreply.Automatic(autoreply.Incoming{
		Kind: autoreply.KindAcknowledgement, EnvelopeFrom: in.EnvelopeFrom, Header: m.Header,
		ContentType: m.ContentType, ContentTypeParams: m.ContentTypeParams, PartTypes: autoreply.PartTypesOf(m),
	}); !v.Reply {
		return nil, nil
	}
	if facts.Verdicts.Spam == routing.VerdictFail || facts.Verdicts.Virus == routing.VerdictFail {
		return nil, nil
	}
	msg := sla.Message{
		MessageID: m.MessageID, InReplyTo: m.InReplyTo, References: m.References,
		From: facts.Sender, Subject: m.Subject, Language: m.ContentLanguage, At: in.ReceivedAt,
	}
	if msg.MessageID == "" {
		msg.MessageID = in.ID + "@ses"
	}
	for _, s := range rep.Sent {
		if s.SESID != "" {
			msg.SESMessageIDs = append(msg.SESMessageIDs, s.SESID)
		}
	}
	for _, r := range in.Recipients {
		if slices.Contains(h.cfg.JournalAddresses, strings.ToLower(r)) {
			if !facts.Internal {
				return nil, nil // only the organisation's own mail is staff mail
			}
			convs, err := h.sla.StaffSent(ctx, msg)
			for _, c := range convs {
				h.log.InfoContext(ctx, "conversation answered", "sesMessageId", in.ID, "conversation", c.ID, "queue", c.Queue)
			}
			return nil, err
		}
	}
	out := map[string]string{}
	var errs []error
	for _, rc := range dec.Recipients {
		if rc.Outcome != routing.Deliver || (rc.Kind != directory.KindGroup && rc.Kind != directory.KindMailbox) {
			continue
		}
		q := sla.Queue(rc.Kind, rc.Target)
		if _, done := out[q]; done {
			continue
		}
		c, ok, err := h.sla.Received(ctx, q, dec.SLA, msg, facts.Internal)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			out[q] = c.ID
			h.log.InfoContext(ctx, "conversation", "sesMessageId", in.ID, "conversation", c.ID, "queue", q, "state", c.State)
		}
	}
	return out, errors.Join(errs...)
}

// reply sends the automatic replies the message gets: out-of-office, acknowledgement, closed
// mailbox. Each goes once however often the invocation is retried (the delivery ledger keeps
// it), and is remembered for its sender only once sent.
func (h *Handler) reply(ctx context.Context, dm delivery.Message, res archive.Result, msg routing.Message, dec routing.Decision, convs map[string]string) error {
	replies, err := h.replies.Plan(ctx, msg, res.Message, dec)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range replies {
		if !r.Verdict.Reply {
			h.log.InfoContext(ctx, "auto-reply suppressed", "sesMessageId", dm.ID, "kind", r.Kind,
				"responder", r.Responder, "rule", r.Verdict.Rule)
			continue
		}
		var buf bytes.Buffer
		err := compose.AutoReply(&buf, compose.AutoReplyOptions{
			Generated: h.delivery.Generated(r.From.Address), From: r.From, To: r.To,
			Subject: r.Subject, Body: r.Body, InReplyTo: r.InReplyTo, References: r.References,
			Language: r.Language,
		})
		if err != nil {
			// Nothing a retry would change (an envelope sender that is no address): logged,
			// not retried.
			h.log.WarnContext(ctx, "auto-reply not written", "sesMessageId", dm.ID, "kind", r.Kind,
				"responder", r.Responder, "err", err)
			continue
		}
		sent, skipped, err := h.delivery.SendGenerated(ctx, dm, "autoreply:"+r.Responder, r.From.Address, []string{r.To}, buf.Bytes())
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case skipped:
			h.log.InfoContext(ctx, "auto-reply skipped: destination suspended", "sesMessageId", dm.ID,
				"kind", r.Kind, "responder", r.Responder)
			continue
		}
		// Recorded at the receipt time, so a retry after a failed record writes the same entry.
		if err := h.replies.Record(ctx, r, msg.ReceivedAt); err != nil {
			errs = append(errs, err)
			continue
		}
		h.log.InfoContext(ctx, "auto-reply sent", "sesMessageId", dm.ID, "kind", r.Kind,
			"responder", r.Responder, "sesReplyId", sent.SESID, "already", sent.Again)
		// A customer who answers the acknowledgement names SES's id for it.
		if id := convs[r.Responder]; id != "" && sent.SESID != "" {
			if err := h.sla.Thread(ctx, id, []string{sent.SESID}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// hold puts the message in the moderation of every group routing held it for.
func (h *Handler) hold(ctx context.Context, in archive.Received, res archive.Result, dec routing.Decision) error {
	if len(dec.Holds) == 0 {
		return nil
	}
	m := res.Message
	var from mail.Address
	if len(m.From) > 0 {
		from = m.From[0]
	}
	var names []string
	for _, a := range m.Attachments {
		if a.Filename != "" {
			names = append(names, a.Filename)
		}
	}
	var errs []error
	for _, held := range dec.Holds {
		hd, err := h.holds.Hold(ctx, moderation.HoldInput{
			Message: in.ID, Key: res.Record.Key, Group: held.Group, Recipient: held.Recipient,
			From: from, EnvelopeFrom: in.EnvelopeFrom, Subject: m.Subject, Size: m.Size,
			Attachments: names, Verdicts: Envelope(in).Verdicts, ReceivedAt: in.ReceivedAt,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.log.InfoContext(ctx, "held for moderation", "sesMessageId", in.ID, "group", held.Group, "hold", hd.ID)
	}
	return errors.Join(errs...)
}

// decide routes a parsed message.
func (h *Handler) decide(ctx context.Context, in archive.Received, m *mail.Message) (routing.Message, routing.Decision, error) {
	msg, err := routing.MessageOf(ctx, h.dir, Envelope(in), m)
	if err != nil {
		return msg, routing.Decision{}, err
	}
	d, err := h.router.Decide(ctx, msg)
	return msg, d, err
}

func (h *Handler) deliveryMessage(in archive.Received, res archive.Result, internal bool) delivery.Message {
	m := res.Message
	dm := delivery.Message{
		ID: in.ID, Key: res.Record.Key, Size: m.Size, MessageID: m.MessageID,
		Subject: m.Subject, EnvelopeFrom: in.EnvelopeFrom, Header: m.Header,
		Open: func(ctx context.Context) (io.ReadCloser, int64, error) {
			if res.Raw != nil {
				return io.NopCloser(bytes.NewReader(res.Raw)), int64(len(res.Raw)), nil
			}
			return h.objects.Open(ctx, res.Record.Key)
		},
	}
	if len(m.From) > 0 {
		dm.From = m.From[0]
	}
	dm.Internal = internal
	return dm
}

// Envelope is the routing envelope of a received message.
func Envelope(in archive.Received) routing.Envelope {
	return routing.Envelope{
		ID: in.ID, EnvelopeFrom: in.EnvelopeFrom, Recipients: in.Recipients, ReceivedAt: in.ReceivedAt,
		Verdicts: routing.Verdicts{
			Spam: in.Verdicts.Spam, Virus: in.Verdicts.Virus, SPF: in.Verdicts.SPF,
			DKIM: in.Verdicts.DKIM, DMARC: in.Verdicts.DMARC,
		},
	}
}

func outcomes(d routing.Decision) []string {
	out := make([]string, len(d.Recipients))
	for i, r := range d.Recipients {
		out[i] = r.Address + ":" + r.Outcome
	}
	return out
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
