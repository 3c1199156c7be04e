// Package archive keeps every message Mailroom receives: the original bytes in object storage under
// a dated key a person can browse, and a metadata record for search, threading and retention. It
// never drops a message: what cannot be parsed is archived all the same and flagged.
package archive

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

// Objects is where message bytes live (S3). Copy happens inside the store, so archiving a 40 MB
// message moves no message bytes through the function a second time.
type Objects interface {
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Copy(ctx context.Context, src, dst string, metadata map[string]string) (versionID string, err error)
	Exists(ctx context.Context, key string) (bool, error)
}

// Index is where archive records live (DynamoDB).
type Index interface {
	// Get returns the record with the given id, or a fault.NotFound error.
	Get(ctx context.Context, id string) (Record, error)
	// Put stores a new record, or returns a fault.Conflict error when one with its id exists.
	Put(ctx context.Context, r Record) error
}

// Received is a message that has arrived: SES (or the local ingress, or an import) has stored its
// raw bytes at RawKey.
type Received struct {
	ID           string // the SES message id; unique per received message
	RawKey       string
	ReceivedAt   time.Time
	EnvelopeFrom string   // MAIL FROM; empty for bounces
	Recipients   []string // envelope recipients this delivery is for
	Verdicts     Verdicts
	Source       string // "ses" or "import"
}

// Verdicts are SES's receipt checks: PASS, FAIL, GRAY or PROCESSING_FAILED each, and the sending
// domain's DMARC policy when DMARC failed.
type Verdicts struct {
	Spam        string `json:"spam,omitempty"`
	Virus       string `json:"virus,omitempty"`
	SPF         string `json:"spf,omitempty"`
	DKIM        string `json:"dkim,omitempty"`
	DMARC       string `json:"dmarc,omitempty"`
	DMARCPolicy string `json:"dmarcPolicy,omitempty"`
}

// Record is the metadata of one archived message.
type Record struct {
	ID           string    `json:"id"`
	Source       string    `json:"source"`
	Key          string    `json:"key"`    // the archived original
	RawKey       string    `json:"rawKey"` // where it arrived
	ReceivedAt   time.Time `json:"receivedAt"`
	ArchivedAt   time.Time `json:"archivedAt"`
	EnvelopeFrom string    `json:"envelopeFrom,omitempty"`
	Recipients   []string  `json:"recipients"`

	MessageID  string         `json:"messageId,omitempty"`
	InReplyTo  []string       `json:"inReplyTo,omitempty"`
	References []string       `json:"references,omitempty"`
	From       []mail.Address `json:"from,omitempty"`
	To         []mail.Address `json:"to,omitempty"`
	Cc         []mail.Address `json:"cc,omitempty"`
	ReplyTo    []mail.Address `json:"replyTo,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	Date       time.Time      `json:"date,omitzero"`

	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"`
	Attachments []mail.Attachment `json:"attachments,omitempty"`
	Verdicts    Verdicts          `json:"verdicts"`
	Labels      []string          `json:"labels,omitempty"`
	// Groups are the ids of the groups the message was delivered through (routing's recipients
	// of kind group with the outcome deliver): each lists the message, as a recipient's mailbox
	// and a label do (Listings).
	Groups []string `json:"groups,omitempty"`
	// Priority and SLA are set by routing rules.
	Priority string `json:"priority,omitempty"`
	SLA      string `json:"sla,omitempty"`
	// Flags are the distinct problem codes found while parsing, plus Mailroom's own ("truncated-…").
	// A message with flags is archived like any other; the flags say what to look at.
	Flags    []string       `json:"flags,omitempty"`
	Problems []mail.Problem `json:"problems,omitempty"`
}

// FromAddress is the first From address, lower-cased, or "" when there is none.
func (r Record) FromAddress() string {
	if len(r.From) == 0 {
		return ""
	}
	return strings.ToLower(r.From[0].Address)
}

// HasAttachments reports whether the message carries any attachment.
func (r Record) HasAttachments() bool { return len(r.Attachments) > 0 }

// Limits keep one record within DynamoDB's 400 KB item limit whatever the message holds. What is
// cut is flagged; the original bytes are always complete in the archive.
const (
	maxAddresses   = 200
	maxAttachments = 200
	maxReferences  = 50
	maxProblems    = 20
	maxSubject     = 2000
)

// Result says what Archive did.
type Result struct {
	Record Record
	// Message is what parsing found, also on a duplicate delivery.
	Message *mail.Message
	// Raw is the message's bytes when it is small (at most KeepRaw), so that forwarding it needs
	// no second read from S3; nil for a larger one.
	Raw []byte
	// Duplicate is true when the message had already been archived (a repeated delivery of the
	// same SES event); nothing was written.
	Duplicate bool
}

// Service archives received messages.
type Service struct {
	Objects Objects
	Index   Index
	// Prefix is where archived originals go, e.g. "archive/".
	Prefix string
	Now    func() time.Time
}

// idPattern is what a message id may look like: SES ids are lower-case alphanumerics; imports use
// the same alphabet. Anything else could escape the key layout.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$`)

// ValidID reports whether id can be an archived message's id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Archive stores one received message. It is idempotent: a second call for the same message writes
// nothing and reports Duplicate. It reads the raw message once, as a stream.
func (s *Service) Archive(ctx context.Context, in Received) (Result, error) {
	return s.Classify(ctx, in, nil)
}

// Classifier looks at a parsed message before its record is written and adds to the record what it
// decides (labels, priority, flags), so the decision is stored in the same write.
type Classifier func(ctx context.Context, m *mail.Message, r *Record) error

// Classify is Archive with a classifier; on a duplicate delivery the classifier does not run and
// the stored record is returned.
func (s *Service) Classify(ctx context.Context, in Received, classify Classifier) (Result, error) {
	const op = "archive.Archive"
	if !idPattern.MatchString(in.ID) {
		return Result{}, fault.InvalidField(op, "id", "message id %q is not a valid archive id", in.ID)
	}
	if in.RawKey == "" {
		return Result{}, fault.InvalidField(op, "rawKey", "no raw object key")
	}
	if in.ReceivedAt.IsZero() {
		return Result{}, fault.InvalidField(op, "receivedAt", "no receipt time")
	}

	body, size, err := s.Objects.Open(ctx, in.RawKey)
	if err != nil {
		return Result{}, err
	}
	var r io.Reader = body
	keep := &smallCopy{max: KeepRaw, over: size <= 0 || size > KeepRaw}
	if !keep.over {
		keep.buf = make([]byte, 0, size)
		r = io.TeeReader(body, keep)
	}
	msg, err := mail.Parse(r)
	body.Close()
	if err != nil {
		// Only a failed read gets here; malformed mail parses with problems instead.
		return Result{}, fault.Wrap(fault.Transient, op, fmt.Errorf("read %s: %w", in.RawKey, err))
	}
	rec := newRecord(in, msg)
	rec.Key = s.Key(in.ReceivedAt, in.ID)
	rec.ArchivedAt = s.Now().UTC()
	if classify != nil {
		if err := classify(ctx, msg, &rec); err != nil {
			return Result{}, err
		}
	}
	// The classifier adds groups and labels, so only now is it known whether every listing fits.
	rec.FlagCutListings()

	// The record is written first and conditionally: it is what makes archiving happen once. A
	// repeated delivery fails the condition and writes nothing, and the common path costs three
	// requests (read, record, copy) rather than four with a look-up first. The price is that the
	// copy may be missing when an earlier attempt stopped between record and copy; the repeated
	// delivery checks for that and finishes the job.
	res := Result{Record: rec, Message: msg}
	if !keep.over {
		res.Raw = keep.buf
	}
	switch err := s.Index.Put(ctx, rec); {
	case err == nil:
	case fault.Is(err, fault.Conflict):
		if res.Record, err = s.Index.Get(ctx, in.ID); err != nil {
			return Result{}, err
		}
		res.Duplicate = true
		exists, err := s.Objects.Exists(ctx, res.Record.Key)
		if err != nil || exists {
			return res, err
		}
	default:
		return Result{}, err
	}
	if _, err := s.Objects.Copy(ctx, in.RawKey, res.Record.Key, map[string]string{
		"archive-id": rec.ID,
		"sha256":     rec.SHA256,
	}); err != nil {
		return Result{}, err
	}
	return res, nil
}

// KeepRaw is the largest message whose bytes Archive keeps for its caller.
const KeepRaw = 256 << 10

// smallCopy keeps what is written to it up to max bytes, then nothing.
type smallCopy struct {
	buf  []byte
	max  int
	over bool
}

func (c *smallCopy) Write(p []byte) (int, error) {
	if !c.over {
		if len(c.buf)+len(p) > c.max {
			c.over, c.buf = true, nil
		} else {
			c.buf = append(c.buf, p...)
		}
	}
	return len(p), nil
}

// Key is where the original of a message received at t is archived: by UTC date, so a person
// browsing the bucket finds a day's mail in one folder.
func (s *Service) Key(t time.Time, id string) string {
	return s.Prefix + t.UTC().Format("2006/01/02/") + id + ".eml"
}

func newRecord(in Received, m *mail.Message) Record {
	source := in.Source
	if source == "" {
		source = "ses"
	}
	r := Record{
		ID:           in.ID,
		Source:       source,
		RawKey:       in.RawKey,
		ReceivedAt:   in.ReceivedAt.UTC(),
		EnvelopeFrom: in.EnvelopeFrom,
		Recipients:   lowerAll(in.Recipients),
		Verdicts:     in.Verdicts,
		MessageID:    m.MessageID,
		InReplyTo:    m.InReplyTo,
		References:   m.References,
		From:         m.From,
		To:           m.To,
		Cc:           m.Cc,
		ReplyTo:      m.ReplyTo,
		Subject:      m.Subject,
		Date:         m.Date,
		Size:         m.Size,
		SHA256:       m.SHA256,
		Attachments:  m.Attachments,
		Problems:     m.Problems,
	}
	flags := map[string]bool{}
	for _, p := range m.Problems {
		flags[p.Code] = true
	}
	truncate := func(flag string, n, max int) int {
		if n > max {
			flags[flag] = true
			return max
		}
		return n
	}
	r.Recipients = r.Recipients[:truncate("truncated-recipients", len(r.Recipients), maxAddresses)]
	r.To = r.To[:truncate("truncated-addresses", len(r.To), maxAddresses)]
	r.Cc = r.Cc[:truncate("truncated-addresses", len(r.Cc), maxAddresses)]
	r.Attachments = r.Attachments[:truncate("truncated-attachments", len(r.Attachments), maxAttachments)]
	r.Problems = r.Problems[:truncate("truncated-problems", len(r.Problems), maxProblems)]
	// Threading needs the nearest ancestors, which References lists last.
	if n := len(r.References); n > maxReferences {
		flags["truncated-references"] = true
		r.References = r.References[n-maxReferences:]
	}
	if len(r.Subject) > maxSubject {
		flags["truncated-subject"] = true
		r.Subject = truncateUTF8(r.Subject, maxSubject)
	}
	for f := range flags {
		r.Flags = append(r.Flags, f)
	}
	sort.Strings(r.Flags)
	return r
}

func lowerAll(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, strings.ToLower(a))
	}
	return out
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
