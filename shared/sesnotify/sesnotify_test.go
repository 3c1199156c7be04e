package sesnotify_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sesnotify"
)

// samples are the repository's real-shaped events; events/events_test.go proves their shape.
const samples = "../../events/ses-events"

func readEventBridge(t *testing.T, name string) events.CloudWatchEvent {
	t.Helper()
	var ev events.CloudWatchEvent
	readJSON(t, name, &ev)
	return ev
}

func readSNS(t *testing.T, name string) events.SNSEventRecord {
	t.Helper()
	var ev events.SNSEvent
	readJSON(t, name, &ev)
	if len(ev.Records) != 1 {
		t.Fatalf("%s: %d records, want 1", name, len(ev.Records))
	}
	return ev.Records[0]
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samples, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// summary is what a handler acts on; every sample is checked against it.
type summary struct {
	EventType  sesnotify.EventType
	MessageID  string
	Source     string
	Recipients []string
	// Body is the event's own object, dereferenced.
	Body any
}

func summarise(r sesnotify.Record) summary {
	s := summary{EventType: r.EventType, MessageID: r.Mail.MessageID, Source: r.Mail.Source, Recipients: r.Recipients()}
	switch {
	case r.Bounce != nil:
		s.Body = *r.Bounce
	case r.Complaint != nil:
		s.Body = *r.Complaint
	case r.Delivery != nil:
		s.Body = *r.Delivery
	case r.Send != nil:
		s.Body = *r.Send
	case r.Reject != nil:
		s.Body = *r.Reject
	case r.DeliveryDelay != nil:
		s.Body = *r.DeliveryDelay
	}
	return s
}

func TestFromEventBridge(t *testing.T) {
	tests := []struct {
		file string
		want summary
	}{
		{"eventbridge-send.json", summary{
			EventType: sesnotify.EventSend, MessageID: "EXAMPLE0000000001-send-0000-0000-000000000001-000000",
			Source: "sales@example.com", Recipients: []string{"amy.tan@mailhost.example.net"},
			Body: sesnotify.Send{},
		}},
		{"eventbridge-delivery.json", summary{
			EventType: sesnotify.EventDelivery, MessageID: "EXAMPLE0000000001-send-0000-0000-000000000001-000000",
			Source: "sales@example.com", Recipients: []string{"amy.tan@mailhost.example.net"},
			Body: sesnotify.Delivery{
				Timestamp: ts("2024-03-04T09:15:04.872Z"), ProcessingTimeMillis: 1462,
				Recipients: []string{"amy.tan@mailhost.example.net"}, SMTPResponse: "250 2.6.0 Message received",
				ReportingMTA: "a1-23.smtp-out.amazonses.com", RemoteMtaIP: "203.0.113.30",
			},
		}},
		{"eventbridge-bounce-permanent.json", summary{
			EventType: sesnotify.EventBounce, MessageID: "EXAMPLE0000000002-send-0000-0000-000000000002-000000",
			Source: "support@example.com", Recipients: []string{"former.employee@mailhost.example.net"},
			Body: sesnotify.Bounce{
				BounceType: sesnotify.BouncePermanent, BounceSubType: "General",
				BouncedRecipients: []sesnotify.BouncedRecipient{{
					EmailAddress: "former.employee@mailhost.example.net", Action: "failed", Status: "5.1.1",
					DiagnosticCode: "smtp; 550 5.1.1 user unknown",
				}},
				Timestamp:    ts("2024-03-04T10:02:47.669Z"),
				FeedbackID:   "EXAMPLE0000000002-feedback-0000-0000-000000000002-000000",
				ReportingMTA: "dns; a1-23.smtp-out.amazonses.com", RemoteMtaIP: "203.0.113.31",
			},
		}},
		{"eventbridge-bounce-transient.json", summary{
			EventType: sesnotify.EventBounce, MessageID: "EXAMPLE0000000003-send-0000-0000-000000000003-000000",
			Source: "sales@example.com", Recipients: []string{"customer@example.org"},
			Body: sesnotify.Bounce{
				BounceType: sesnotify.BounceTransient, BounceSubType: "MailboxFull",
				BouncedRecipients: []sesnotify.BouncedRecipient{{
					EmailAddress: "customer@example.org", Action: "failed", Status: "4.2.2",
					DiagnosticCode: "smtp; 452 4.2.2 The email account that you tried to reach is over quota",
				}},
				Timestamp:    ts("2024-03-05T09:20:11.102Z"),
				FeedbackID:   "EXAMPLE0000000003-feedback-0000-0000-000000000003-000000",
				ReportingMTA: "dns; a1-23.smtp-out.amazonses.com", RemoteMtaIP: "203.0.113.10",
			},
		}},
		{"eventbridge-complaint.json", summary{
			EventType: sesnotify.EventComplaint, MessageID: "EXAMPLE0000000004-send-0000-0000-000000000004-000000",
			Source: "sales@example.com", Recipients: []string{"customer@example.org"},
			Body: sesnotify.Complaint{
				ComplainedRecipients:  []sesnotify.Recipient{{EmailAddress: "customer@example.org"}},
				Timestamp:             ts("2024-03-04T16:41:02.669Z"),
				FeedbackID:            "EXAMPLE0000000004-feedback-0000-0000-000000000004-000000",
				UserAgent:             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
				ComplaintFeedbackType: "abuse",
				ArrivalDate:           ts("2024-03-04T16:40:58.000Z"),
			},
		}},
		{"eventbridge-reject.json", summary{
			EventType: sesnotify.EventReject, MessageID: "EXAMPLE0000000005-send-0000-0000-000000000005-000000",
			Source: "finance@example.com", Recipients: []string{"controller@mailhost.example.net"},
			Body: sesnotify.Reject{Reason: "Bad content"},
		}},
		{"eventbridge-delivery-delay.json", summary{
			EventType: sesnotify.EventDeliveryDelay, MessageID: "EXAMPLE0000000006-send-0000-0000-000000000006-000000",
			Source: "support@example.com", Recipients: []string{"it-desk@example.net"},
			Body: sesnotify.DeliveryDelay{
				Timestamp: ts("2024-03-04T11:10:40.095Z"), DelayType: "TransientCommunicationFailure",
				ExpirationTime: ts("2024-03-04T23:00:12.641Z"),
				DelayedRecipients: []sesnotify.DelayedRecipient{{
					EmailAddress: "it-desk@example.net", Status: "4.4.1",
					DiagnosticCode: "smtp; 421 4.4.1 Unable to connect to remote host",
				}},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := sesnotify.FromEventBridge(readEventBridge(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := summarise(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFromSNS(t *testing.T) {
	tests := []struct {
		file string
		want summary
	}{
		{"sns-bounce.json", summary{
			EventType: sesnotify.EventBounce, MessageID: "EXAMPLE0000000012-send-0000-0000-000000000012-000000",
			Source: "sales@example.com", Recipients: []string{"old.address@example.org"},
			Body: sesnotify.Bounce{
				BounceType: sesnotify.BouncePermanent, BounceSubType: "NoEmail",
				BouncedRecipients: []sesnotify.BouncedRecipient{{
					EmailAddress: "old.address@example.org", Action: "failed", Status: "5.1.1",
					DiagnosticCode: "smtp; 550 5.1.1 user unknown",
				}},
				Timestamp:    ts("2024-03-06T08:00:03.117Z"),
				FeedbackID:   "EXAMPLE0000000012-feedback-0000-0000-000000000012-000000",
				ReportingMTA: "dns; a1-23.smtp-out.amazonses.com", RemoteMtaIP: "203.0.113.31",
			},
		}},
		{"sns-complaint.json", summary{
			EventType: sesnotify.EventComplaint, MessageID: "EXAMPLE0000000013-send-0000-0000-000000000013-000000",
			Source: "support@example.com", Recipients: []string{"buyer@example.org"},
			Body: sesnotify.Complaint{
				ComplainedRecipients:  []sesnotify.Recipient{{EmailAddress: "buyer@example.org"}},
				Timestamp:             ts("2024-03-04T16:41:02.669Z"),
				FeedbackID:            "EXAMPLE0000000013-feedback-0000-0000-000000000013-000000",
				UserAgent:             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
				ComplaintFeedbackType: "abuse",
				ArrivalDate:           ts("2024-03-04T16:40:58.000Z"),
			},
		}},
		{"sns-delivery.json", summary{
			EventType: sesnotify.EventDelivery, MessageID: "EXAMPLE0000000014-send-0000-0000-000000000014-000000",
			Source: "support@example.com", Recipients: []string{"buyer@example.org"},
			Body: sesnotify.Delivery{
				Timestamp: ts("2024-03-06T10:00:01.004Z"), ProcessingTimeMillis: 754,
				Recipients: []string{"buyer@example.org"}, SMTPResponse: "250 2.6.0 Message received",
				ReportingMTA: "a1-23.smtp-out.amazonses.com", RemoteMtaIP: "203.0.113.30",
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := sesnotify.FromSNS(readSNS(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := summarise(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestMailDecoded checks the mail object once, field by field, on a record that has all of it.
func TestMailDecoded(t *testing.T) {
	r, err := sesnotify.FromEventBridge(readEventBridge(t, "eventbridge-delivery.json"))
	if err != nil {
		t.Fatal(err)
	}
	const id = "EXAMPLE0000000001-send-0000-0000-000000000001-000000"
	want := sesnotify.Mail{
		Timestamp:        ts("2024-03-04T09:15:03.410Z"),
		Source:           "sales@example.com",
		SourceArn:        "arn:aws:ses:us-east-1:123456789012:identity/example.com",
		SendingAccountID: "123456789012",
		MessageID:        id,
		Destination:      []string{"amy.tan@mailhost.example.net"},
		Headers: []sesnotify.Header{
			{Name: "From", Value: "sales@example.com"},
			{Name: "To", Value: "amy.tan@mailhost.example.net"},
			{Name: "Subject", Value: "Quote for 40 seats"},
			{Name: "Message-ID", Value: "<" + id + "@email.amazonses.com>"},
			{Name: "MIME-Version", Value: "1.0"},
			{Name: "Content-Type", Value: `multipart/alternative; boundary="----=_Part_EXAMPLE"`},
		},
		CommonHeaders: &sesnotify.CommonHeaders{
			From: []string{"sales@example.com"}, To: []string{"amy.tan@mailhost.example.net"},
			MessageID: "<" + id + "@email.amazonses.com>", Subject: "Quote for 40 seats",
		},
		Tags: map[string][]string{
			"ses:configuration-set": {"mailroom-outbound"},
			"ses:source-ip":         {"192.0.2.10"},
			"ses:from-domain":       {"example.com"},
			"ses:caller-identity":   {"mailroom-inbound"},
			"ses:outgoing-ip":       {"198.51.100.25"},
			"mailroom-kind":         {"forward"},
		},
	}
	if !reflect.DeepEqual(r.Mail, want) {
		t.Errorf("got  %+v\nwant %+v", r.Mail, want)
	}
}

func TestDetailTypeCoversEveryEventType(t *testing.T) {
	for _, et := range []sesnotify.EventType{
		sesnotify.EventSend, sesnotify.EventDelivery, sesnotify.EventBounce, sesnotify.EventComplaint,
		sesnotify.EventReject, sesnotify.EventDeliveryDelay, sesnotify.EventRenderingFailure,
		sesnotify.EventOpen, sesnotify.EventClick, sesnotify.EventSubscription,
	} {
		if sesnotify.DetailType(et) == "" {
			t.Errorf("DetailType(%q) is empty", et)
		}
	}
	if got := sesnotify.DetailType("Unsubscribe"); got != "" {
		t.Errorf(`DetailType("Unsubscribe") = %q, want ""`, got)
	}
}

// TestParseRecordOtherTypes covers the event types Mailroom does not sample yet, with the
// documented field names, so their bodies are known to decode where SES puts them.
func TestParseRecordOtherTypes(t *testing.T) {
	const mail = `"mail":{"timestamp":"2024-03-04T09:15:03.410Z","source":"sales@example.com","messageId":"EXAMPLE-1","destination":["customer@example.org"],"headersTruncated":false}`
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"rendering failure", `{"eventType":"Rendering Failure",` + mail + `,"failure":{"errorMessage":"Attribute 'name' is not present in the rendering data.","templateName":"acknowledgement-en"}}`,
			sesnotify.RenderingFailure{TemplateName: "acknowledgement-en", ErrorMessage: "Attribute 'name' is not present in the rendering data."}},
		{"open", `{"eventType":"Open",` + mail + `,"open":{"ipAddress":"192.0.2.1","timestamp":"2024-03-04T10:00:00.000Z","userAgent":"Mail/1.0"}}`,
			sesnotify.Open{IPAddress: "192.0.2.1", Timestamp: ts("2024-03-04T10:00:00Z"), UserAgent: "Mail/1.0"}},
		{"click", `{"eventType":"Click",` + mail + `,"click":{"ipAddress":"192.0.2.1","link":"https://example.com/status","linkTags":{"case":["42"]},"timestamp":"2024-03-04T10:00:00.000Z","userAgent":"Mail/1.0"}}`,
			sesnotify.Click{IPAddress: "192.0.2.1", Link: "https://example.com/status", LinkTags: map[string][]string{"case": {"42"}}, Timestamp: ts("2024-03-04T10:00:00Z"), UserAgent: "Mail/1.0"}},
		{"subscription", `{"eventType":"Subscription",` + mail + `,"subscription":{"contactList":"customers","timestamp":"2024-03-04T10:00:00.000Z","source":"UnsubscribeHeader","newTopicPreferences":{"unsubscribeAll":true,"topicSubscriptionStatus":[{"topicName":"news","subscriptionStatus":"OptOut"}]},"oldTopicPreferences":{"unsubscribeAll":false,"topicSubscriptionStatus":[{"topicName":"news","subscriptionStatus":"OptIn"}]}}}`,
			sesnotify.Subscription{
				ContactList: "customers", Timestamp: ts("2024-03-04T10:00:00Z"), Source: "UnsubscribeHeader",
				NewTopicPreferences: sesnotify.TopicPreferences{UnsubscribeAll: true, TopicSubscriptionStatus: []sesnotify.TopicStatus{{TopicName: "news", SubscriptionStatus: "OptOut"}}},
				OldTopicPreferences: sesnotify.TopicPreferences{TopicSubscriptionStatus: []sesnotify.TopicStatus{{TopicName: "news", SubscriptionStatus: "OptIn"}}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := sesnotify.ParseRecord([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got any
			switch {
			case r.RenderingFailure != nil:
				got = *r.RenderingFailure
			case r.Open != nil:
				got = *r.Open
			case r.Click != nil:
				got = *r.Click
			case r.Subscription != nil:
				got = *r.Subscription
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if rs := r.Recipients(); !reflect.DeepEqual(rs, []string{"customer@example.org"}) {
				t.Errorf("Recipients() = %v, want the destination", rs)
			}
		})
	}
}

// TestParseRecordIgnoresNewFields: SES adds fields over time; production parsing must not refuse
// a bounce because of one.
func TestParseRecordIgnoresNewFields(t *testing.T) {
	in := `{"eventType":"Send","newTopLevel":1,"mail":{"timestamp":"2024-03-04T09:15:03.410Z","messageId":"EXAMPLE-1","destination":["a@example.org"],"somethingNew":"x"},"send":{"detail":true}}`
	r, err := sesnotify.ParseRecord([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r.EventType != sesnotify.EventSend || r.Mail.MessageID != "EXAMPLE-1" || r.Send == nil {
		t.Errorf("got %+v", r)
	}
}

func TestInvalid(t *testing.T) {
	bounceMail := `"mail":{"timestamp":"2024-03-04T09:15:03.410Z","source":"sales@example.com","messageId":"EXAMPLE-1","destination":["a@example.org"]}`
	valid := `{"eventType":"Bounce",` + bounceMail + `,"bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@example.org"}],"timestamp":"2024-03-04T09:15:04Z","feedbackId":"f"}}`
	eb := func(source, detailType, detail string) func() (sesnotify.Record, error) {
		return func() (sesnotify.Record, error) {
			return sesnotify.FromEventBridge(events.CloudWatchEvent{Source: source, DetailType: detailType, Detail: json.RawMessage(detail)})
		}
	}
	sns := func(source, typ, msg string) func() (sesnotify.Record, error) {
		return func() (sesnotify.Record, error) {
			return sesnotify.FromSNS(events.SNSEventRecord{EventSource: source, SNS: events.SNSEntity{Type: typ, Message: msg}})
		}
	}
	parse := func(in string) func() (sesnotify.Record, error) {
		return func() (sesnotify.Record, error) { return sesnotify.ParseRecord([]byte(in)) }
	}
	tests := []struct {
		name      string
		call      func() (sesnotify.Record, error)
		wantField string
		wantIn    string // a phrase the message must contain
	}{
		{"empty", parse("  "), "", "empty record"},
		{"not JSON", parse("{"), "", "not an SES event record"},
		{"wrong JSON type", parse(`{"eventType":7}`), "", "not an SES event record"},
		{"no eventType", parse(`{` + bounceMail + `}`), "eventType", "missing"},
		{"feedback notification", parse(`{"notificationType":"Bounce",` + bounceMail + `}`), "eventType", "identity feedback notification"},
		{"unknown eventType", parse(`{"eventType":"Bounced",` + bounceMail + `}`), "eventType", `unknown event type "Bounced"`},
		{"no messageId", parse(`{"eventType":"Send","mail":{"timestamp":"2024-03-04T09:15:03.410Z"},"send":{}}`), "mail.messageId", "missing"},
		{"no mail timestamp", parse(`{"eventType":"Send","mail":{"messageId":"EXAMPLE-1"},"send":{}}`), "mail.timestamp", "missing"},
		{"body missing", parse(`{"eventType":"Bounce",` + bounceMail + `}`), "bounce", `missing for eventType "Bounce"`},
		{"send body missing", parse(`{"eventType":"Send",` + bounceMail + `}`), "send", "missing"},
		{"failure body missing", parse(`{"eventType":"Rendering Failure",` + bounceMail + `}`), "failure", "missing"},
		{"no bounceType", parse(strings.Replace(valid, `"bounceType":"Permanent",`, "", 1)), "bounce.bounceType", "missing"},
		{"no bounced recipients", parse(strings.Replace(valid, `[{"emailAddress":"a@example.org"}]`, `[]`, 1)), "bounce.bouncedRecipients", "empty"},
		{"bounced recipient without address", parse(strings.Replace(valid, `[{"emailAddress":"a@example.org"}]`, `[{"emailAddress":"a@example.org"},{"status":"5.1.1"}]`, 1)), "bounce.bouncedRecipients[1].emailAddress", "missing"},
		{"no complained recipients", parse(`{"eventType":"Complaint",` + bounceMail + `,"complaint":{"complainedRecipients":[]}}`), "complaint.complainedRecipients", "empty"},
		{"no delivery recipients", parse(`{"eventType":"Delivery",` + bounceMail + `,"delivery":{"smtpResponse":"250"}}`), "delivery.recipients", "empty"},
		{"no delayed recipients", parse(`{"eventType":"DeliveryDelay",` + bounceMail + `,"deliveryDelay":{"delayType":"MailboxFull"}}`), "deliveryDelay.delayedRecipients", "empty"},

		{"EventBridge from another service", eb("aws.events", "Email Bounced", valid), "source", `"aws.events" is not aws.ses`},
		{"EventBridge without detail", eb("aws.ses", "Email Bounced", ""), "detail", "missing"},
		{"EventBridge null detail", eb("aws.ses", "Email Bounced", "null"), "detail", "missing"},
		{"EventBridge detail-type mismatch", eb("aws.ses", "Email Delivered", valid), "detail-type", `want "Email Bounced"`},
		{"EventBridge bad record", eb("aws.ses", "Email Bounced", `{"eventType":"Bounce"}`), "detail.mail.messageId", "missing"},

		{"SNS from another source", sns("aws:sqs", "Notification", valid), "EventSource", "is not aws:sns"},
		{"SNS subscription confirmation", sns("aws:sns", "SubscriptionConfirmation", valid), "Sns.Type", "is not Notification"},
		{"SNS empty message", sns("aws:sns", "Notification", ""), "Sns.Message", "empty"},
		{"SNS message not JSON", sns("aws:sns", "Notification", "Bounce!"), "Sns.Message", "not an SES event record"},
		{"SNS bad record", sns("aws:sns", "Notification", strings.Replace(valid, `"bounceType":"Permanent",`, "", 1)), "Sns.Message.bounce.bounceType", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.call()
			if err == nil {
				t.Fatalf("no error; got %+v", r)
			}
			if !fault.Is(err, fault.Invalid) {
				t.Errorf("kind: got %v, want invalid (%v)", fault.KindOf(err), err)
			}
			if got := fault.FieldOf(err); got != tt.wantField {
				t.Errorf("field: got %q, want %q (%v)", got, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not say %q", err, tt.wantIn)
			}
			if !reflect.DeepEqual(r, sesnotify.Record{}) {
				t.Errorf("got a record with the error: %+v", r)
			}
		})
	}

	if _, err := sesnotify.ParseRecord([]byte(valid)); err != nil {
		t.Errorf("the valid record the cases start from is refused: %v", err)
	}
}
