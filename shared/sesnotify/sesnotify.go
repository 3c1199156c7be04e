// Package sesnotify reads the event records Amazon SES publishes for a configuration set (send,
// delivery, bounce, complaint, …), whether they arrive through EventBridge or SNS. It knows the
// record's documented shape and checks it; what Mailroom does with an event is decided elsewhere.
package sesnotify

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/fault"
)

// EventType is the record's eventType. The values are SES's own spelling, including the space in
// "Rendering Failure".
type EventType string

const (
	EventSend             EventType = "Send"
	EventDelivery         EventType = "Delivery"
	EventBounce           EventType = "Bounce"
	EventComplaint        EventType = "Complaint"
	EventReject           EventType = "Reject"
	EventDeliveryDelay    EventType = "DeliveryDelay"
	EventRenderingFailure EventType = "Rendering Failure"
	EventOpen             EventType = "Open"
	EventClick            EventType = "Click"
	EventSubscription     EventType = "Subscription"
)

// detailTypes is the EventBridge detail-type SES uses for each event type; a mismatch means the
// rule routed something that is not what its detail says.
var detailTypes = map[EventType]string{
	EventSend:             "Email Sent",
	EventDelivery:         "Email Delivered",
	EventBounce:           "Email Bounced",
	EventComplaint:        "Email Complaint Received",
	EventReject:           "Email Rejected",
	EventDeliveryDelay:    "Email Delivery Delayed",
	EventRenderingFailure: "Email Rendering Failed",
	EventOpen:             "Email Opened",
	EventClick:            "Email Clicked",
	EventSubscription:     "Email Subscribed",
}

// DetailType returns the EventBridge detail-type SES publishes events of type t under, or "" for
// a type SES does not publish.
func DetailType(t EventType) string { return detailTypes[t] }

// Record is one configuration-set event. The pointer field that matches EventType holds the
// event's body; ParseRecord guarantees it is there.
type Record struct {
	EventType EventType `json:"eventType"`
	Mail      Mail      `json:"mail"`

	Bounce        *Bounce        `json:"bounce,omitempty"`
	Complaint     *Complaint     `json:"complaint,omitempty"`
	Delivery      *Delivery      `json:"delivery,omitempty"`
	Send          *Send          `json:"send,omitempty"`
	Reject        *Reject        `json:"reject,omitempty"`
	DeliveryDelay *DeliveryDelay `json:"deliveryDelay,omitempty"`
	// RenderingFailure is published under "failure", not "renderingFailure".
	RenderingFailure *RenderingFailure `json:"failure,omitempty"`
	Open             *Open             `json:"open,omitempty"`
	Click            *Click            `json:"click,omitempty"`
	Subscription     *Subscription     `json:"subscription,omitempty"`
}

// Mail describes the message the event is about. MessageID is the id SES assigned when it
// accepted the message for sending; the message's own Message-ID header is in CommonHeaders.
type Mail struct {
	Timestamp        time.Time      `json:"timestamp"`
	Source           string         `json:"source"`
	SourceArn        string         `json:"sourceArn,omitempty"`
	SendingAccountID string         `json:"sendingAccountId,omitempty"`
	MessageID        string         `json:"messageId"`
	Destination      []string       `json:"destination"`
	HeadersTruncated bool           `json:"headersTruncated"`
	Headers          []Header       `json:"headers,omitempty"`
	CommonHeaders    *CommonHeaders `json:"commonHeaders,omitempty"`
	// Tags holds the message tags and SES's own (ses:configuration-set, ses:from-domain, …).
	Tags map[string][]string `json:"tags,omitempty"`
}

// Header is one of the message's original headers, in order.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CommonHeaders are the headers SES decodes for convenience. Address lists keep display names.
type CommonHeaders struct {
	From       []string `json:"from,omitempty"`
	ReplyTo    []string `json:"replyTo,omitempty"`
	To         []string `json:"to,omitempty"`
	Cc         []string `json:"cc,omitempty"`
	Bcc        []string `json:"bcc,omitempty"`
	ReturnPath string   `json:"returnPath,omitempty"`
	MessageID  string   `json:"messageId,omitempty"`
	Date       string   `json:"date,omitempty"`
	Subject    string   `json:"subject,omitempty"`
}

// BounceType says whether sending to the bounced addresses again can succeed: Permanent means no,
// Transient means SES gave up retrying for now, Undetermined means SES could not tell.
type BounceType string

const (
	BounceUndetermined BounceType = "Undetermined"
	BouncePermanent    BounceType = "Permanent"
	BounceTransient    BounceType = "Transient"
)

// Bounce is the body of a Bounce event. SES only publishes hard bounces and soft bounces it has
// stopped retrying.
type Bounce struct {
	BounceType        BounceType         `json:"bounceType"`
	BounceSubType     string             `json:"bounceSubType"`
	BouncedRecipients []BouncedRecipient `json:"bouncedRecipients"`
	Timestamp         time.Time          `json:"timestamp"`
	FeedbackID        string             `json:"feedbackId"`
	// ReportingMTA is only present when a DSN came with the bounce.
	ReportingMTA string `json:"reportingMTA,omitempty"`
	RemoteMtaIP  string `json:"remoteMtaIp,omitempty"`
}

// BouncedRecipient is one address that bounced. Action, Status and DiagnosticCode come from the
// DSN and are often absent.
type BouncedRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action,omitempty"`
	Status         string `json:"status,omitempty"`
	DiagnosticCode string `json:"diagnosticCode,omitempty"`
}

// Complaint is the body of a Complaint event. Most mailbox providers redact the complainant, so
// ComplainedRecipients lists every recipient on the complaining domain.
type Complaint struct {
	ComplainedRecipients []Recipient `json:"complainedRecipients"`
	Timestamp            time.Time   `json:"timestamp"`
	FeedbackID           string      `json:"feedbackId"`
	// ComplaintSubType is empty or "OnAccountSuppressionList".
	ComplaintSubType string `json:"complaintSubType,omitempty"`
	// The rest come from the feedback report, when there is one.
	UserAgent             string    `json:"userAgent,omitempty"`
	ComplaintFeedbackType string    `json:"complaintFeedbackType,omitempty"`
	ArrivalDate           time.Time `json:"arrivalDate,omitzero"`
}

// Recipient is an address named by an event.
type Recipient struct {
	EmailAddress string `json:"emailAddress"`
}

// Delivery is the body of a Delivery event: the receiving server accepted the message.
type Delivery struct {
	Timestamp            time.Time `json:"timestamp"`
	ProcessingTimeMillis int64     `json:"processingTimeMillis"`
	Recipients           []string  `json:"recipients"`
	SMTPResponse         string    `json:"smtpResponse"`
	ReportingMTA         string    `json:"reportingMTA,omitempty"`
	RemoteMtaIP          string    `json:"remoteMtaIp,omitempty"`
}

// Send is the body of a Send event; SES always publishes it empty.
type Send struct{}

// Reject is the body of a Reject event: SES found a virus and did not send.
type Reject struct {
	Reason string `json:"reason"`
}

// DeliveryDelay is the body of a DeliveryDelay event: SES is still retrying until ExpirationTime.
type DeliveryDelay struct {
	Timestamp         time.Time          `json:"timestamp"`
	DelayType         string             `json:"delayType"`
	ExpirationTime    time.Time          `json:"expirationTime,omitzero"`
	ReportingMTA      string             `json:"reportingMTA,omitempty"`
	DelayedRecipients []DelayedRecipient `json:"delayedRecipients"`
}

// DelayedRecipient is one address whose delivery is delayed.
type DelayedRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Status         string `json:"status,omitempty"`
	DiagnosticCode string `json:"diagnosticCode,omitempty"`
}

// RenderingFailure is the body of a "Rendering Failure" event: a template could not be filled.
type RenderingFailure struct {
	TemplateName string `json:"templateName"`
	ErrorMessage string `json:"errorMessage"`
}

// Open is the body of an Open event.
type Open struct {
	IPAddress string    `json:"ipAddress"`
	Timestamp time.Time `json:"timestamp"`
	UserAgent string    `json:"userAgent"`
}

// Click is the body of a Click event.
type Click struct {
	IPAddress string              `json:"ipAddress"`
	Timestamp time.Time           `json:"timestamp"`
	UserAgent string              `json:"userAgent"`
	Link      string              `json:"link"`
	LinkTags  map[string][]string `json:"linkTags,omitempty"`
}

// Subscription is the body of a Subscription event: a contact changed its list preferences.
type Subscription struct {
	ContactList         string           `json:"contactList"`
	Timestamp           time.Time        `json:"timestamp"`
	Source              string           `json:"source"`
	NewTopicPreferences TopicPreferences `json:"newTopicPreferences"`
	OldTopicPreferences TopicPreferences `json:"oldTopicPreferences"`
}

// TopicPreferences is a contact's subscription state for a contact list.
type TopicPreferences struct {
	UnsubscribeAll          bool          `json:"unsubscribeAll"`
	TopicSubscriptionStatus []TopicStatus `json:"topicSubscriptionStatus,omitempty"`
}

// TopicStatus is a contact's choice for one topic (OptIn or OptOut).
type TopicStatus struct {
	TopicName          string `json:"topicName"`
	SubscriptionStatus string `json:"subscriptionStatus"`
}

// Recipients returns the addresses the event is about: those that bounced, complained, were
// delivered to or delayed; for other events, the message's destination.
func (r Record) Recipients() []string {
	var out []string
	switch {
	case r.Bounce != nil:
		for _, b := range r.Bounce.BouncedRecipients {
			out = append(out, b.EmailAddress)
		}
	case r.Complaint != nil:
		for _, c := range r.Complaint.ComplainedRecipients {
			out = append(out, c.EmailAddress)
		}
	case r.Delivery != nil:
		out = append(out, r.Delivery.Recipients...)
	case r.DeliveryDelay != nil:
		for _, d := range r.DeliveryDelay.DelayedRecipients {
			out = append(out, d.EmailAddress)
		}
	default:
		out = append(out, r.Mail.Destination...)
	}
	return out
}

// ParseRecord decodes and checks one event record, as SES publishes it to SNS or as the detail of
// an EventBridge event. Fields it does not know are ignored, because SES adds fields over time and
// a new one must not stop bounces from being handled. Errors are fault.Invalid and name the field.
func ParseRecord(b []byte) (Record, error) {
	const op = "sesnotify.ParseRecord"
	var in struct {
		Record
		// Identity-level feedback notifications use notificationType and a different body; they
		// are not configuration-set events and are refused with a message that says so.
		NotificationType string `json:"notificationType"`
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return Record{}, fault.New(fault.Invalid, op, "empty record")
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return Record{}, &fault.Error{Kind: fault.Invalid, Op: op, Message: "not an SES event record", Err: err}
	}
	r := in.Record
	if r.EventType == "" {
		if in.NotificationType != "" {
			return Record{}, fault.InvalidField(op, "eventType",
				"missing: notificationType %q is an identity feedback notification, not a configuration-set event",
				in.NotificationType)
		}
		return Record{}, fault.InvalidField(op, "eventType", "missing")
	}
	if err := r.validate(op); err != nil {
		return Record{}, err
	}
	return r, nil
}

func (r Record) validate(op string) error {
	if _, ok := detailTypes[r.EventType]; !ok {
		return fault.InvalidField(op, "eventType", "unknown event type %q", r.EventType)
	}
	if r.Mail.MessageID == "" {
		return fault.InvalidField(op, "mail.messageId", "missing")
	}
	if r.Mail.Timestamp.IsZero() {
		return fault.InvalidField(op, "mail.timestamp", "missing")
	}
	field, present := r.body()
	if !present {
		return fault.InvalidField(op, field, "missing for eventType %q", r.EventType)
	}
	switch r.EventType {
	case EventBounce:
		if r.Bounce.BounceType == "" {
			return fault.InvalidField(op, "bounce.bounceType", "missing")
		}
		if len(r.Bounce.BouncedRecipients) == 0 {
			return fault.InvalidField(op, "bounce.bouncedRecipients", "empty")
		}
		for i, b := range r.Bounce.BouncedRecipients {
			if b.EmailAddress == "" {
				return fault.InvalidField(op, "bounce.bouncedRecipients["+strconv.Itoa(i)+"].emailAddress", "missing")
			}
		}
	case EventComplaint:
		if len(r.Complaint.ComplainedRecipients) == 0 {
			return fault.InvalidField(op, "complaint.complainedRecipients", "empty")
		}
		for i, c := range r.Complaint.ComplainedRecipients {
			if c.EmailAddress == "" {
				return fault.InvalidField(op, "complaint.complainedRecipients["+strconv.Itoa(i)+"].emailAddress", "missing")
			}
		}
	case EventDelivery:
		if len(r.Delivery.Recipients) == 0 {
			return fault.InvalidField(op, "delivery.recipients", "empty")
		}
	case EventDeliveryDelay:
		if len(r.DeliveryDelay.DelayedRecipients) == 0 {
			return fault.InvalidField(op, "deliveryDelay.delayedRecipients", "empty")
		}
		for i, d := range r.DeliveryDelay.DelayedRecipients {
			if d.EmailAddress == "" {
				return fault.InvalidField(op, "deliveryDelay.delayedRecipients["+strconv.Itoa(i)+"].emailAddress", "missing")
			}
		}
	}
	return nil
}

// body names the JSON field that must carry r's event body and reports whether it is there.
func (r Record) body() (string, bool) {
	switch r.EventType {
	case EventBounce:
		return "bounce", r.Bounce != nil
	case EventComplaint:
		return "complaint", r.Complaint != nil
	case EventDelivery:
		return "delivery", r.Delivery != nil
	case EventSend:
		return "send", r.Send != nil
	case EventReject:
		return "reject", r.Reject != nil
	case EventDeliveryDelay:
		return "deliveryDelay", r.DeliveryDelay != nil
	case EventRenderingFailure:
		return "failure", r.RenderingFailure != nil
	case EventOpen:
		return "open", r.Open != nil
	case EventClick:
		return "click", r.Click != nil
	case EventSubscription:
		return "subscription", r.Subscription != nil
	}
	return "eventType", false
}

// FromEventBridge reads the record SES put in an EventBridge event's detail, and checks that the
// event comes from SES and that its detail-type agrees with the record.
func FromEventBridge(ev events.CloudWatchEvent) (Record, error) {
	const op = "sesnotify.FromEventBridge"
	if ev.Source != "aws.ses" {
		return Record{}, fault.InvalidField(op, "source", "%q is not aws.ses", ev.Source)
	}
	if len(ev.Detail) == 0 || string(ev.Detail) == "null" {
		return Record{}, fault.InvalidField(op, "detail", "missing")
	}
	r, err := ParseRecord(ev.Detail)
	if err != nil {
		return Record{}, within(op, "detail", err)
	}
	if want := DetailType(r.EventType); ev.DetailType != want {
		return Record{}, fault.InvalidField(op, "detail-type", "%q does not match eventType %q (want %q)",
			ev.DetailType, r.EventType, want)
	}
	return r, nil
}

// FromSNS reads the record SES published to an SNS topic, which SNS hands to Lambda as a JSON
// string in Message.
func FromSNS(rec events.SNSEventRecord) (Record, error) {
	const op = "sesnotify.FromSNS"
	if rec.EventSource != "aws:sns" {
		return Record{}, fault.InvalidField(op, "EventSource", "%q is not aws:sns", rec.EventSource)
	}
	if rec.SNS.Type != "Notification" {
		return Record{}, fault.InvalidField(op, "Sns.Type", "%q is not Notification", rec.SNS.Type)
	}
	if strings.TrimSpace(rec.SNS.Message) == "" {
		return Record{}, fault.InvalidField(op, "Sns.Message", "empty")
	}
	r, err := ParseRecord([]byte(rec.SNS.Message))
	if err != nil {
		return Record{}, within(op, "Sns.Message", err)
	}
	return r, nil
}

// within re-attributes an error from ParseRecord to the envelope field that carried the record,
// so "mail.messageId" becomes "detail.mail.messageId".
func within(op, prefix string, err error) error {
	var e *fault.Error
	if !errors.As(err, &e) {
		return fault.Wrap(fault.Invalid, op, err)
	}
	field := prefix
	if e.Field != "" {
		field += "." + e.Field
	}
	return &fault.Error{Kind: e.Kind, Op: op, Field: field, Message: e.Message, Err: e.Err}
}
