// Package smtpingress is the local stack's stand-in for an SES receipt rule: it accepts mail over
// SMTP for the organisation's domains, stores the raw message under inbound/<id> as SES's S3 action
// does, and calls the inbound function in-process with the event SES's Lambda action would send.
package smtpingress

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/emersion/go-smtp"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/s3store"
)

// Objects is where the raw message is written; *s3store.Store implements it.
type Objects interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) (s3store.Object, error)
}

var _ Objects = (*s3store.Store)(nil)

// Invoke runs the inbound function's handler with an SES receipt event.
type Invoke func(ctx context.Context, ev events.SimpleEmailEvent) error

// Verdict is an SES receipt verdict status.
type Verdict string

const (
	Pass             Verdict = "PASS"
	Fail             Verdict = "FAIL"
	Gray             Verdict = "GRAY"
	ProcessingFailed Verdict = "PROCESSING_FAILED"
)

// Verdicts are reported for every message, because nothing is checked locally. Zero fields take
// the defaults: PASS for spam and virus, GRAY (not checked) for SPF, DKIM and DMARC.
type Verdicts struct {
	Spam, Virus, SPF, DKIM, DMARC Verdict
	// DMARCPolicy is the sending domain's policy (none, quarantine or reject). SES reports it only
	// when DMARC fails, so it is ignored otherwise; it defaults to none.
	DMARCPolicy string
}

// Config configures an Ingress. Domains, Objects and Invoke are required.
type Config struct {
	// Domains are the recipient domains the rule matches, each with its subdomains.
	Domains []string
	Objects Objects
	Invoke  Invoke

	Bucket string // names the bucket in logs only; Objects already writes to it
	Prefix string // object key prefix, default "inbound/"

	// Region, AccountID and FunctionName build the Received header and the function ARN in the
	// event. Defaults: us-east-1, 000000000000, mailroom-inbound.
	Region, AccountID, FunctionName string

	Verdicts Verdicts
	// MaxSize is the largest message accepted, default 40 MB (SES's receiving limit).
	MaxSize int64
	// RetryDelay is the wait before the first retry of a failed invocation; the second waits
	// twice as long. Default 100ms: Lambda waits minutes, but a person is waiting here.
	RetryDelay time.Duration

	Now   func() time.Time
	NewID func() string // SES-like message ids; default 40 random lowercase alphanumerics
	Log   *slog.Logger
}

const (
	defaultMaxSize = 40 << 20
	// maxRecipients is SES's limit per message.
	maxRecipients = 50
	// invokeAttempts is Lambda's first asynchronous attempt plus its two retries.
	invokeAttempts = 3
)

// Ingress is a running receipt rule. It is safe for concurrent use.
type Ingress struct {
	domains    []string
	objects    Objects
	invoke     Invoke
	bucket     string
	prefix     string
	region     string
	arn        string
	verdicts   Verdicts
	maxSize    int64
	retryDelay time.Duration
	now        func() time.Time
	newID      func() string
	log        *slog.Logger

	srv    *smtp.Server
	ctx    context.Context // cancelled by Close, so in-flight work stops with the server
	cancel context.CancelFunc
}

// Receipt is the outcome of receiving one message.
type Receipt struct {
	MessageID string
	Key       string
	// Event is the event as the inbound function received it.
	Event events.SimpleEmailEvent
	// InvokeErr is the last error of the inbound function after its retries. The message was
	// still accepted and its raw object kept, as SES does, so it can be replayed.
	InvokeErr error
}

// New checks cfg and returns an Ingress ready to Receive or Serve.
func New(cfg Config) (*Ingress, error) {
	const op = "smtpingress.New"
	switch {
	case cfg.Objects == nil:
		return nil, fault.InvalidField(op, "Objects", "required: the store raw messages are written to")
	case cfg.Invoke == nil:
		return nil, fault.InvalidField(op, "Invoke", "required: the inbound function's handler")
	case len(cfg.Domains) == 0:
		return nil, fault.InvalidField(op, "Domains", "required: at least one domain to receive mail for")
	}
	in := &Ingress{
		objects:    cfg.Objects,
		invoke:     cfg.Invoke,
		bucket:     cfg.Bucket,
		prefix:     or(cfg.Prefix, "inbound/"),
		region:     or(cfg.Region, "us-east-1"),
		maxSize:    cfg.MaxSize,
		retryDelay: cfg.RetryDelay,
		now:        cfg.Now,
		newID:      cfg.NewID,
		log:        cfg.Log,
	}
	for _, d := range cfg.Domains {
		// SES writes "subdomains of example.com" as ".example.com"; both mean the same here.
		d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
		if d == "" || strings.ContainsAny(d, "@ \t\r\n<>") {
			return nil, fault.InvalidField(op, "Domains", "%q is not a domain name", d)
		}
		in.domains = append(in.domains, d)
	}
	in.arn = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s",
		in.region, or(cfg.AccountID, "000000000000"), or(cfg.FunctionName, "mailroom-inbound"))
	v, err := verdictDefaults(cfg.Verdicts)
	if err != nil {
		return nil, fault.InvalidField(op, "Verdicts", "%v", err)
	}
	in.verdicts = v
	if in.maxSize < 0 {
		return nil, fault.InvalidField(op, "MaxSize", "must not be negative")
	}
	if in.maxSize == 0 {
		in.maxSize = defaultMaxSize
	}
	if in.retryDelay <= 0 {
		in.retryDelay = 100 * time.Millisecond
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.newID == nil {
		in.newID = randomID
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.srv = in.newServer()
	return in, nil
}

func verdictDefaults(v Verdicts) (Verdicts, error) {
	fields := []struct {
		name string
		v    *Verdict
		def  Verdict
	}{
		{"Spam", &v.Spam, Pass}, {"Virus", &v.Virus, Pass},
		{"SPF", &v.SPF, Gray}, {"DKIM", &v.DKIM, Gray}, {"DMARC", &v.DMARC, Gray},
	}
	for _, f := range fields {
		switch *f.v {
		case "":
			*f.v = f.def
		case Pass, Fail, Gray, ProcessingFailed:
		default:
			return v, fmt.Errorf("%s: %q is not PASS, FAIL, GRAY or PROCESSING_FAILED", f.name, *f.v)
		}
	}
	switch v.DMARCPolicy {
	case "":
		v.DMARCPolicy = "none"
	case "none", "quarantine", "reject":
	default:
		return v, fmt.Errorf("DMARCPolicy: %q is not none, quarantine or reject", v.DMARCPolicy)
	}
	return v, nil
}

// Receive does what the receipt rule does once SMTP has accepted a message: it stores raw under
// Prefix+id with SES's receipt headers on top and invokes the inbound function. An error means the
// message was not accepted (invalid envelope, too large, or the store failed); a failing function
// is reported in Receipt.InvokeErr instead.
func (in *Ingress) Receive(ctx context.Context, envelopeFrom string, recipients []string, raw io.Reader) (Receipt, error) {
	return in.receive(ctx, envelope{from: envelopeFrom, to: recipients, helo: "localhost", ip: "127.0.0.1"}, raw)
}

// envelope is what SMTP knew about a message before its first byte.
type envelope struct {
	from     string
	to       []string
	helo, ip string
}

var errTooLarge = errors.New("message too large")

func (in *Ingress) receive(ctx context.Context, env envelope, raw io.Reader) (Receipt, error) {
	const op = "smtpingress.Receive"
	if err := in.checkEnvelope(op, env); err != nil {
		return Receipt{}, err
	}
	receivedAt := in.now()
	id := in.newID()
	if !validID(id) {
		return Receipt{}, fault.New(fault.Internal, op, "NewID returned %q; ids become object keys and must be letters, digits or '-'", id)
	}
	msg, err := spool(raw, in.maxSize)
	if errors.Is(err, errTooLarge) || errors.Is(err, smtp.ErrDataTooLarge) {
		return Receipt{}, &fault.Error{Kind: fault.Invalid, Op: op, Field: "raw",
			Err: fmt.Errorf("%w: more than %d bytes", errTooLarge, in.maxSize)}
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("%s: read message: %w", op, err)
	}
	defer msg.Close()

	orig := readHeader(msg.head())
	head := in.receiptHeaders(id, receivedAt, env, orig, msg.lineEnding())
	stored := joined(head, msg)
	key := in.prefix + id
	if _, err := in.objects.Put(ctx, key, stored, stored.Size()); err != nil {
		return Receipt{}, fmt.Errorf("%s: store %s: %w", op, key, err)
	}

	ev := in.event(id, env, receivedAt, in.now(), append(readHeader(bytes.NewReader(head)).fields, orig.fields...), orig)
	payload, err := MarshalEvent(ev)
	if err != nil {
		return Receipt{}, fault.Wrap(fault.Internal, op, err)
	}
	rc := Receipt{MessageID: id, Key: key}
	rc.Event, rc.InvokeErr = in.call(ctx, id, payload)
	attrs := []any{"message_id", id, "bucket", in.bucket, "key", key, "from", env.from,
		"recipients", env.to, "size", stored.Size()}
	if rc.InvokeErr != nil {
		in.log.Error("inbound function failed after retries; raw message kept for replay",
			append(attrs, "attempts", invokeAttempts, "err", rc.InvokeErr)...)
	} else {
		in.log.Info("message received", attrs...)
	}
	return rc, nil
}

// checkEnvelope applies at Receive what SMTP applies command by command, so callers that skip SMTP
// get the same answers.
func (in *Ingress) checkEnvelope(op string, env envelope) error {
	// Quoted local parts may hold spaces; what must not get through is anything that would end
	// the Return-Path or Received field early.
	if strings.ContainsAny(env.from, "<>\r\n") {
		return fault.InvalidField(op, "envelopeFrom", "%q is not an address", env.from)
	}
	if len(env.to) == 0 {
		return fault.InvalidField(op, "recipients", "at least one recipient is required")
	}
	if len(env.to) > maxRecipients {
		return fault.InvalidField(op, "recipients", "%d recipients; at most %d per message", len(env.to), maxRecipients)
	}
	for _, rcpt := range env.to {
		if err := in.checkRecipient(op, rcpt); err != nil {
			return err
		}
	}
	return nil
}

// checkRecipient reports whether the rule matches rcpt: its domain is served, or is a subdomain
// of one that is.
func (in *Ingress) checkRecipient(op, rcpt string) error {
	at := strings.LastIndexByte(rcpt, '@')
	if at <= 0 || strings.ContainsAny(rcpt, "<>\r\n") {
		return fault.InvalidField(op, "recipients", "%q is not an address", rcpt)
	}
	domain := strings.ToLower(rcpt[at+1:])
	for _, d := range in.domains {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return nil
		}
	}
	return fault.InvalidField(op, "recipients", "%s is not a domain this stack receives mail for (it receives for %s)",
		domain, strings.Join(in.domains, ", "))
}

// call invokes the function the way Lambda runs an asynchronous invocation: each attempt gets the
// event decoded afresh from the same JSON, and a failed attempt is retried twice.
func (in *Ingress) call(ctx context.Context, id string, payload []byte) (events.SimpleEmailEvent, error) {
	var ev events.SimpleEmailEvent
	var err error
	delay := in.retryDelay
	for attempt := 1; attempt <= invokeAttempts; attempt++ {
		if attempt > 1 {
			in.log.Warn("inbound function failed; retrying", "message_id", id, "attempt", attempt-1, "err", err)
			select {
			case <-ctx.Done():
				return ev, errors.Join(err, ctx.Err())
			case <-time.After(delay):
			}
			delay *= 2
		}
		ev = events.SimpleEmailEvent{}
		if err := json.Unmarshal(payload, &ev); err != nil {
			return ev, fault.Wrap(fault.Internal, "smtpingress.call", err)
		}
		if err = invokeSafely(ctx, in.invoke, ev); err == nil {
			return ev, nil
		}
	}
	return ev, err
}

// invokeSafely turns a panic into an error, as the Lambda runtime reports one as a failed
// invocation instead of taking the whole local stack down.
func invokeSafely(ctx context.Context, f Invoke, ev events.SimpleEmailEvent) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("inbound function panicked: %v", p)
		}
	}()
	return f(ctx, ev)
}

// randomID returns an id shaped like SES's: 40 lowercase letters and digits.
func randomID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var id [40]byte
	var buf [64]byte
	for n := 0; n < len(id); {
		rand.Read(buf[:])
		for _, b := range buf {
			// 252 is the largest multiple of 36 below 256; higher bytes would bias the result.
			if b < 252 && n < len(id) {
				id[n] = alphabet[b%36]
				n++
			}
		}
	}
	return string(id[:])
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
