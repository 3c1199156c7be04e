package sesevents

import (
	"encoding/json"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sesnotify"
)

// ParseEvent reads the outcomes in a Lambda event that carries SES configuration-set events: an
// EventBridge event (detail-type "Email Bounced" and so on, detail the SES record) or an SNS event
// (each Records[].Sns.Message a record). A record yields one outcome per recipient it is about:
// bounced, complained, delivered or delayed recipients, or the message's destinations for a send
// or reject. Events Mailroom does not record (opens, clicks, rendering failures, subscriptions)
// yield none. An event that is not one of these is fault.Invalid.
func ParseEvent(data []byte) ([]destinations.Outcome, error) {
	records, err := ParseRecords(data)
	if err != nil {
		return nil, err
	}
	var out []destinations.Outcome
	for _, r := range records {
		out = append(out, outcomes(r)...)
	}
	return out, nil
}

// ParseRecords reads the SES records in an EventBridge or SNS event, as ParseEvent does.
func ParseRecords(data []byte) ([]sesnotify.Record, error) {
	const op = "sesevents.ParseEvent"
	var shape struct {
		Records    json.RawMessage `json:"Records"`
		Source     string          `json:"source"`
		DetailType string          `json:"detail-type"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		return nil, &fault.Error{Kind: fault.Invalid, Op: op, Message: "not a JSON object", Err: err}
	}
	switch {
	case len(shape.Records) > 0:
		var ev events.SNSEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, &fault.Error{Kind: fault.Invalid, Op: op, Message: "not an SNS event", Err: err}
		}
		if len(ev.Records) == 0 {
			return nil, fault.InvalidField(op, "Records", "empty")
		}
		// SNS hands Lambda one record per invocation, so refusing the event for a bad record loses
		// no other.
		var out []sesnotify.Record
		for _, rec := range ev.Records {
			r, err := sesnotify.FromSNS(asEventRecord(rec))
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	case shape.Source != "" || shape.DetailType != "":
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, &fault.Error{Kind: fault.Invalid, Op: op, Message: "not an EventBridge event", Err: err}
		}
		r, err := sesnotify.FromEventBridge(ev)
		if err != nil {
			return nil, err
		}
		return []sesnotify.Record{r}, nil
	}
	return nil, fault.New(fault.Invalid, op, "neither an EventBridge event (source, detail-type) nor an SNS event (Records)")
}

// asEventRecord lets an identity notification through sesnotify: SES's older feedback
// notifications, published to SNS for an identity rather than a configuration set, name their
// type in notificationType and otherwise carry the same bounce, complaint and delivery bodies.
func asEventRecord(rec events.SNSEventRecord) events.SNSEventRecord {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(rec.SNS.Message), &m) != nil {
		return rec // sesnotify reports it
	}
	if _, ok := m["eventType"]; ok {
		return rec
	}
	nt, ok := m["notificationType"]
	if !ok {
		return rec
	}
	m["eventType"] = nt
	delete(m, "notificationType")
	b, err := json.Marshal(m)
	if err != nil {
		return rec
	}
	rec.SNS.Message = string(b)
	return rec
}

// outcomes turns one SES record into one outcome per recipient it is about.
func outcomes(r sesnotify.Record) []destinations.Outcome {
	base := destinations.Outcome{
		SESMessageID:     r.Mail.MessageID,
		InboundMessageID: tag(r.Mail.Tags, destinations.TagMessage),
		Via:              tag(r.Mail.Tags, destinations.TagVia),
	}
	each := func(addr string, fill func(*destinations.Outcome)) destinations.Outcome {
		o := base
		o.Destination = addr
		fill(&o)
		return o
	}
	var out []destinations.Outcome
	switch {
	case r.Bounce != nil:
		b := r.Bounce
		for _, rc := range b.BouncedRecipients {
			out = append(out, each(rc.EmailAddress, func(o *destinations.Outcome) {
				o.Type, o.At, o.FeedbackID = destinations.TypeBounce, b.Timestamp, b.FeedbackID
				o.BounceType, o.BounceSubType = string(b.BounceType), b.BounceSubType
				o.Status, o.Diagnostic = rc.Status, rc.DiagnosticCode
			}))
		}
	case r.Complaint != nil:
		c := r.Complaint
		for _, rc := range c.ComplainedRecipients {
			out = append(out, each(rc.EmailAddress, func(o *destinations.Outcome) {
				o.Type, o.At, o.FeedbackID = destinations.TypeComplaint, c.Timestamp, c.FeedbackID
				o.Diagnostic = joinNonEmpty(c.ComplaintFeedbackType, c.ComplaintSubType)
			}))
		}
	case r.Delivery != nil:
		d := r.Delivery
		for _, addr := range d.Recipients {
			out = append(out, each(addr, func(o *destinations.Outcome) {
				o.Type, o.At, o.Diagnostic = destinations.TypeDelivery, d.Timestamp, d.SMTPResponse
			}))
		}
	case r.DeliveryDelay != nil:
		d := r.DeliveryDelay
		for _, rc := range d.DelayedRecipients {
			out = append(out, each(rc.EmailAddress, func(o *destinations.Outcome) {
				o.Type, o.At, o.Status = destinations.TypeDelay, d.Timestamp, rc.Status
				o.Diagnostic = joinNonEmpty(rc.DiagnosticCode, d.DelayType)
			}))
		}
	case r.Send != nil, r.Reject != nil:
		// Neither has a time of its own: SES publishes both as it accepts the message.
		typ, diagnostic := destinations.TypeSend, ""
		if r.Reject != nil {
			typ, diagnostic = destinations.TypeReject, r.Reject.Reason
		}
		for _, addr := range r.Mail.Destination {
			out = append(out, each(addr, func(o *destinations.Outcome) {
				o.Type, o.At, o.Diagnostic = typ, r.Mail.Timestamp, diagnostic
			}))
		}
	}
	return out
}

// tag reads one of Mailroom's message tags; a value that is not EncodeTag's is kept as it is.
func tag(tags map[string][]string, name string) string {
	vs := tags[name]
	if len(vs) == 0 {
		return ""
	}
	v, err := destinations.DecodeTag(vs[0])
	if err != nil {
		return vs[0]
	}
	return v
}

func joinNonEmpty(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}
