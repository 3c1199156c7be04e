// Package delivery carries out a routing decision: it sends the forwarded message through SES in
// batches, once per destination however often the invocation is retried, never twice through the
// same group, replaces a message too large to send with a notice and a link, and sends the
// bounces routing asked for.
package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/compose"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// MaxRecipients is SES's limit on the destinations of one send.
const MaxRecipients = 50

// DefaultMaxSize is the largest raw message SES v2 sends: its limit is 40 MB after base64
// encoding, which 30 MB of raw message reaches.
const DefaultMaxSize = 30 << 20

// Send is one raw message to at most MaxRecipients destinations.
type Send struct {
	// From is the envelope sender's identity (SES FromEmailAddress): an address on a served domain.
	From string
	To   []string
	Raw  []byte
	// Tags name the message in SES's events: the inbound message and the address it went through.
	Tags map[string]string
}

// ErrMaybeSent marks a failed send that SES may nevertheless have accepted: the request went
// out and no answer came back.
var ErrMaybeSent = errors.New("the send may have reached SES")

// Sender sends raw mail (SES v2 SendEmail). It returns SES's message id. An error that wraps
// ErrMaybeSent says SES may have taken the message anyway.
type Sender interface {
	SendRaw(ctx context.Context, s Send) (string, error)
}

// Batch is one send's record in the ledger.
type Batch struct {
	Message string   // the inbound message id
	Key     string   // stable for the same via and destinations
	Via     string   // the address the message passed through, or "bounce", "notice"
	To      []string // destinations
	SESID   string   // SES's message id once sent
	State   string   // BatchClaimed or BatchSent
}

// Ledger states.
const (
	BatchClaimed = "claimed"
	BatchSent    = "sent"
)

// Ledger remembers, per inbound message, what was sent to whom: a retried invocation sends only
// what is missing. It also remembers which messages passed through which address.
type Ledger interface {
	// Batches returns the message's batches.
	Batches(ctx context.Context, message string) ([]Batch, error)
	// Claim records a batch about to be sent; it fails with a Conflict when the batch exists.
	Claim(ctx context.Context, b Batch) error
	// Sent marks a claimed batch sent.
	Sent(ctx context.Context, b Batch) error
	// Release forgets a claim whose send failed, so that a retry sends it.
	Release(ctx context.Context, b Batch) error
	// Pass records that the message with RFC 5322 id messageID, received as inbound message
	// message, passed through via. It returns false when another inbound message with the same
	// id already passed through via: the message has come round again.
	Pass(ctx context.Context, messageID, via, message string) (bool, error)
}

// Links makes expiring links to archived originals.
type Links interface {
	Link(ctx context.Context, key string, expires time.Time) (string, error)
}

// Service delivers routing decisions.
type Service struct {
	Sender Sender
	Ledger Ledger
	Links  Links
	// Suspended lists destinations that bounced hard or complained; nil when none are known.
	Suspended func(ctx context.Context) (map[string]bool, error)
	// MaxSize is the largest message SES takes; default DefaultMaxSize.
	MaxSize int64
	// LinkTTL is how long the link in an oversize notice works; default 7 days.
	LinkTTL time.Duration
	Now     func() time.Time
	NewID   func() string
}

// Message is the received message a decision is about.
type Message struct {
	ID        string // inbound message id
	Key       string // the archived original
	Size      int64
	MessageID string // RFC 5322 Message-ID
	Subject   string
	From      mail.Address // author
	// EnvelopeFrom gets the bounces; empty for null-sender mail.
	EnvelopeFrom string
	// Internal is routing's Facts.Internal: the author's domain is ours and authenticated, so
	// From is kept.
	Internal bool
	Header   mail.Header
	// Open reads the original.
	Open func(ctx context.Context) (io.ReadCloser, int64, error)
}

// Report says what Deliver did.
type Report struct {
	Sent      []Sent   `json:"sent"`
	Skipped   []string `json:"skipped,omitempty"` // why destinations or forwards were left out
	Oversize  bool     `json:"oversize,omitempty"`
	Bounced   int      `json:"bounced,omitempty"`
	Unsettled []string `json:"unsettled,omitempty"`
}

// Sent is one send made (or found already made by an earlier attempt).
type Sent struct {
	Via   string   `json:"via"`
	To    []string `json:"to"`
	SESID string   `json:"sesMessageId,omitempty"`
	Again bool     `json:"already,omitempty"`
}

// Deliver sends what d asks for. It returns an error when any send failed for a reason a retry
// may cure; sends made before the failure are in the ledger, so the retry makes only the rest.
func (s *Service) Deliver(ctx context.Context, m Message, d routing.Decision) (Report, error) {
	const op = "delivery.Deliver"
	var rep Report
	if len(d.Forwards) == 0 && len(d.Bounces) == 0 {
		return rep, nil
	}
	done, err := s.done(ctx, m.ID, &rep)
	if err != nil {
		return rep, err
	}
	suspended := map[string]bool{}
	if s.Suspended != nil {
		if suspended, err = s.Suspended(ctx); err != nil {
			return rep, err
		}
	}
	var errs []error
	var buf bytes.Buffer
	for _, f := range d.Forwards {
		if err := s.forward(ctx, m, f, done, suspended, &buf, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	if len(d.Bounces) > 0 {
		if err := s.bounce(ctx, m, d.Bounces, done, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return rep, fault.Wrap(kindOf(errs), op, errors.Join(errs...))
	}
	return rep, nil
}

// done reads what earlier attempts sent. A batch claimed but never marked sent is one whose
// attempt stopped during the send: SES may or may not have it. It is not sent again (a
// destination must never get two copies); it is reported as unsettled, and SES's events for the
// message settle it.
func (s *Service) done(ctx context.Context, message string, rep *Report) (map[string]bool, error) {
	batches, err := s.Ledger.Batches(ctx, message)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, b := range batches {
		for _, to := range b.To {
			done[b.Via+"\x00"+to] = true
		}
		if b.State != BatchSent {
			rep.Unsettled = append(rep.Unsettled, b.Key)
		}
	}
	return done, nil
}

func (s *Service) forward(ctx context.Context, m Message, f routing.Forward, done, suspended map[string]bool, buf *bytes.Buffer, rep *Report) error {
	var to []string
	for _, d := range f.Destinations {
		switch {
		case suspended[d]:
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: suspended after a hard bounce or complaint", d))
		case done[f.Via.Address+"\x00"+d]:
			rep.Sent = append(rep.Sent, Sent{Via: f.Via.Address, To: []string{d}, Again: true})
		default:
			to = append(to, d)
		}
	}
	if len(to) == 0 {
		return nil
	}
	if m.MessageID != "" {
		first, err := s.Ledger.Pass(ctx, m.MessageID, f.Via.Address, m.ID)
		if err != nil {
			return err
		}
		if !first {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: Message-ID <%s> already passed through it in another message; not forwarded again", f.Via.Address, m.MessageID))
			return nil
		}
	}
	// A message far over the limit is not composed only to be thrown away; one near it is,
	// since forwarding changes its size a little.
	buf.Reset()
	if m.Size <= s.maxSize()+64<<10 {
		if err := s.composeForward(ctx, m, f, buf); err != nil {
			return err
		}
	}
	if m.Size > s.maxSize()+64<<10 || int64(buf.Len()) > s.maxSize() {
		rep.Oversize = true
		return s.oversize(ctx, m, f, to, buf, rep)
	}
	return s.sendBatches(ctx, m, f.Via.Address, senderOf(f.Via.Address), to, buf.Bytes(), rep)
}

func (s *Service) composeForward(ctx context.Context, m Message, f routing.Forward, buf *bytes.Buffer) error {
	body, size, err := m.Open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	author := strings.ToLower(m.From.Address)
	_, err = compose.Forward(buf, body, size, compose.ForwardOptions{
		Via:     f.Via,
		Ours:    func(domain string) bool { return m.Internal && strings.HasSuffix(author, "@"+domain) },
		Loop:    f.Via.Address,
		Headers: f.Headers,
	})
	if err != nil {
		// Transient when reading the original failed; Invalid options fail every retry alike.
		return fault.Wrap(fault.KindOf(err), "delivery.compose", err)
	}
	return nil
}

// sendBatches sends raw to the destinations, at most MaxRecipients per send, each batch claimed
// in the ledger first and marked sent after.
func (s *Service) sendBatches(ctx context.Context, m Message, via, from string, to []string, raw []byte, rep *Report) error {
	var errs []error
	for batch := range slices.Chunk(to, MaxRecipients) {
		b := Batch{Message: m.ID, Key: batchKey(via, batch), Via: via, To: batch, State: BatchClaimed}
		if err := s.Ledger.Claim(ctx, b); err != nil {
			if fault.Is(err, fault.Conflict) {
				rep.Sent = append(rep.Sent, Sent{Via: via, To: batch, Again: true})
				continue
			}
			errs = append(errs, err)
			continue
		}
		id, err := s.Sender.SendRaw(ctx, Send{From: from, To: batch, Raw: raw, Tags: map[string]string{
			destinations.TagMessage: m.ID,
			destinations.TagVia:     via,
		}})
		if err != nil {
			// SES answered and refused: the retry may send this batch. No answer at all (a
			// timeout, a reset connection): SES may have taken it, and a destination must never
			// get two copies, so the claim stays and the batch is reported unsettled.
			if errors.Is(err, ErrMaybeSent) {
				rep.Unsettled = append(rep.Unsettled, b.Key)
			} else if rerr := s.Ledger.Release(ctx, b); rerr != nil {
				err = errors.Join(err, rerr)
			}
			errs = append(errs, err)
			continue
		}
		b.SESID, b.State = id, BatchSent
		if err := s.Ledger.Sent(ctx, b); err != nil {
			// Sent, but not recorded as sent: the claim stays, so a retry will not resend.
			errs = append(errs, err)
		}
		rep.Sent = append(rep.Sent, Sent{Via: via, To: batch, SESID: id})
	}
	return errors.Join(errs...)
}

// oversize sends a notice with an expiring link to the archived original instead of a message
// SES would refuse, and tells the sender once.
func (s *Service) oversize(ctx context.Context, m Message, f routing.Forward, to []string, buf *bytes.Buffer, rep *Report) error {
	expires := s.now().Add(s.linkTTL())
	link, err := s.Links.Link(ctx, m.Key, expires)
	if err != nil {
		return err
	}
	buf.Reset()
	notice := compose.OversizeOptions{
		Generated: s.generated(f.Via.Address),
		Via:       f.Via,
		From:      m.From,
		Subject:   m.Subject,
		MessageID: m.MessageID,
		Size:      m.Size,
		Link:      link,
		Expires:   expires,
	}
	err = compose.OversizeNotice(buf, notice)
	if fault.FieldOf(err) == "From" {
		// A message without an author compose can write (none, "MAILER-DAEMON <>", a bare
		// "postmaster") still reaches its destinations as a link, announced by Via: failing
		// here would fail every retry the same way.
		buf.Reset()
		notice.From = f.Via
		err = compose.OversizeNotice(buf, notice)
	}
	if err != nil {
		return fault.Wrap(fault.Internal, "delivery.oversize", err)
	}
	// The author is told first: a retry resends only what is missing, and it reaches the oversize
	// path again only while some destination still lacks its notice. Told after, an author whose
	// notice failed once would never be told.
	var errs []error
	if note, err := s.authorNotice(m, f, len(to), expires); err != nil {
		errs = append(errs, err)
	} else if note != nil {
		errs = append(errs, s.sendBatches(ctx, m, "notice:"+f.Via.Address, senderOf(f.Via.Address), []string{strings.ToLower(m.From.Address)}, note, rep))
	}
	errs = append(errs, s.sendBatches(ctx, m, f.Via.Address, senderOf(f.Via.Address), to, buf.Bytes(), rep))
	return errors.Join(errs...)
}

// authorNotice is the note telling the author their message went out as a link; nil when the
// author cannot be written to (no envelope sender, or no address compose can use).
func (s *Service) authorNotice(m Message, f routing.Forward, recipients int, expires time.Time) ([]byte, error) {
	if m.EnvelopeFrom == "" || m.From.Address == "" {
		return nil, nil
	}
	var note bytes.Buffer
	err := compose.OversizeSenderNotice(&note, compose.OversizeSenderOptions{
		Generated:  s.generated(f.Via.Address),
		Via:        f.Via,
		To:         m.From,
		Subject:    m.Subject,
		MessageID:  m.MessageID,
		Size:       m.Size,
		Recipients: recipients,
		Expires:    expires,
	})
	switch {
	case fault.FieldOf(err) == "To":
		return nil, nil // an author compose cannot address is one SES could not reach either
	case err != nil:
		return nil, fault.Wrap(fault.Internal, "delivery.oversize", err)
	}
	return note.Bytes(), nil
}

// bounce sends one delivery status notification for all refused recipients to the envelope
// sender, from the mailer-daemon of the first refused recipient's domain.
func (s *Service) bounce(ctx context.Context, m Message, refused []routing.Refusal, done map[string]bool, rep *Report) error {
	if m.EnvelopeFrom == "" || done["bounce\x00"+strings.ToLower(m.EnvelopeFrom)] {
		return nil
	}
	domain := refused[0].Recipient[strings.LastIndexByte(refused[0].Recipient, '@')+1:]
	rcpts := make([]compose.BounceRecipient, len(refused))
	for i, r := range refused {
		rcpts[i] = compose.BounceRecipient{Address: r.Recipient, Status: r.Status, Reason: r.Reason}
	}
	var buf bytes.Buffer
	if err := s.writeBounce(ctx, &buf, m, domain, rcpts); err != nil {
		return err
	}
	if err := s.sendBatches(ctx, m, "bounce", "mailer-daemon@"+domain, []string{strings.ToLower(m.EnvelopeFrom)}, buf.Bytes(), rep); err != nil {
		return err
	}
	rep.Bounced = len(refused)
	return nil
}

func (s *Service) writeBounce(ctx context.Context, buf *bytes.Buffer, m Message, domain string, rcpts []compose.BounceRecipient) error {
	if err := compose.Bounce(buf, compose.BounceOptions{
		Generated:  s.generated("mailer-daemon@" + domain),
		To:         m.EnvelopeFrom,
		Recipients: rcpts,
		Subject:    m.Subject,
		MessageID:  m.MessageID,
		Header:     m.Header,
		Arrived:    s.now(),
	}); err != nil {
		return fault.Wrap(fault.Internal, "delivery.bounce", err)
	}
	return nil
}

func (s *Service) generated(from string) compose.Generated {
	newID := s.NewID
	if newID == nil {
		newID = randomID
	}
	return compose.Generated{Now: s.now, NewID: newID, Domain: from[strings.LastIndexByte(from, '@')+1:]}
}

// randomID is the default Message-ID token of mail Mailroom writes.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) maxSize() int64 {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return DefaultMaxSize
}

func (s *Service) linkTTL() time.Duration {
	if s.LinkTTL > 0 {
		return s.LinkTTL
	}
	return 7 * 24 * time.Hour
}

// senderOf is the envelope identity a send through via uses: via itself, an address on a
// served domain that SES can send as.
func senderOf(via string) string { return via }

// batchKey names a batch by its via and destinations, so the same batch gets the same key on
// every attempt.
func batchKey(via string, to []string) string {
	h := sha256.New()
	h.Write([]byte(via))
	for _, t := range to {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// kindOf is Transient when any error is, so the invocation is retried.
func kindOf(errs []error) fault.Kind {
	for _, e := range errs {
		if fault.KindOf(e) == fault.Transient {
			return fault.Transient
		}
	}
	return fault.KindOf(errs[0])
}

// SuspendedSet adapts the destinations service to Service.Suspended: one read per delivery.
func SuspendedSet(d interface {
	Suspended(ctx context.Context) (map[string]destinations.Suspension, error)
}) func(context.Context) (map[string]bool, error) {
	return func(ctx context.Context) (map[string]bool, error) {
		all, err := d.Suspended(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[string]bool, len(all))
		for addr := range all {
			out[addr] = true
		}
		return out, nil
	}
}

// SendGenerated sends a message Mailroom wrote about m (an automatic reply, an escalation)
// from from to the addresses to, once however often the invocation is retried: the ledger keeps
// it under m and via. Suspended addresses (they bounced hard or complained) are left out; skipped
// is true when none is left and nothing was sent. Sent.Again says an earlier attempt sent it.
func (s *Service) SendGenerated(ctx context.Context, m Message, via, from string, to []string, raw []byte) (sent Sent, skipped bool, err error) {
	var list []string
	suspended := map[string]bool{}
	if s.Suspended != nil {
		if suspended, err = s.Suspended(ctx); err != nil {
			return Sent{}, false, err
		}
	}
	for _, a := range to {
		if a = strings.ToLower(a); !suspended[a] && !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return Sent{}, true, nil
	}
	if len(list) > MaxRecipients {
		return Sent{}, false, fault.InvalidField("delivery.SendGenerated", "to", "at most %d recipients", MaxRecipients)
	}
	var rep Report
	if err := s.sendBatches(ctx, m, via, from, list, raw, &rep); err != nil {
		return Sent{}, false, err
	}
	return rep.Sent[0], false, nil
}

// Generated is what a message Mailroom writes from an address needs: the clock and the ids
// delivery uses.
func (s *Service) Generated(from string) compose.Generated { return s.generated(from) }
