package smtpingress

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// MarshalEvent encodes ev as SES does, which the events package's own encoding does not quite:
// SES omits dmarcPolicy unless DMARC failed and the common headers the message lacks, writes
// timestamps with milliseconds, and orders fields as its documentation shows.
func MarshalEvent(ev events.SimpleEmailEvent) ([]byte, error) {
	out := sesEvent{Records: make([]sesRecord, 0, len(ev.Records))}
	for _, r := range ev.Records {
		m, rc := r.SES.Mail, r.SES.Receipt
		ch := m.CommonHeaders
		out.Records = append(out.Records, sesRecord{
			EventSource:  r.EventSource,
			EventVersion: r.EventVersion,
			SES: sesBody{
				Mail: sesMail{
					Timestamp:        sesTime(m.Timestamp),
					Source:           m.Source,
					MessageID:        m.MessageID,
					Destination:      m.Destination,
					HeadersTruncated: m.HeadersTruncated,
					Headers:          m.Headers,
					CommonHeaders: sesCommonHeaders{
						ReturnPath: ch.ReturnPath, From: ch.From, Date: ch.Date, To: ch.To, Cc: ch.Cc,
						MessageID: ch.MessageID, Subject: ch.Subject,
					},
				},
				Receipt: sesReceipt{
					Timestamp:            sesTime(rc.Timestamp),
					ProcessingTimeMillis: rc.ProcessingTimeMillis,
					Recipients:           rc.Recipients,
					SpamVerdict:          rc.SpamVerdict,
					VirusVerdict:         rc.VirusVerdict,
					SPFVerdict:           rc.SPFVerdict,
					DKIMVerdict:          rc.DKIMVerdict,
					DMARCVerdict:         rc.DMARCVerdict,
					DMARCPolicy:          rc.DMARCPolicy,
					Action: sesAction{
						Type: rc.Action.Type, FunctionARN: rc.Action.FunctionARN, InvocationType: rc.Action.InvocationType,
						TopicARN: rc.Action.TopicARN, BucketName: rc.Action.BucketName, ObjectKey: rc.Action.ObjectKey,
						SMTPReplyCode: rc.Action.SMTPReplyCode, StatusCode: rc.Action.StatusCode,
						Message: rc.Action.Message, Sender: rc.Action.Sender, OrganizationARN: rc.Action.OrganizationARN,
					},
				},
			},
		})
	}
	// SES writes <addresses> as they are; json.Marshal would escape the brackets for HTML.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

type sesEvent struct {
	Records []sesRecord `json:"Records"`
}

type sesRecord struct {
	EventSource  string  `json:"eventSource"`
	EventVersion string  `json:"eventVersion"`
	SES          sesBody `json:"ses"`
}

type sesBody struct {
	Mail    sesMail    `json:"mail"`
	Receipt sesReceipt `json:"receipt"`
}

type sesMail struct {
	Timestamp        sesTime                    `json:"timestamp"`
	Source           string                     `json:"source"`
	MessageID        string                     `json:"messageId"`
	Destination      []string                   `json:"destination"`
	HeadersTruncated bool                       `json:"headersTruncated"`
	Headers          []events.SimpleEmailHeader `json:"headers"`
	CommonHeaders    sesCommonHeaders           `json:"commonHeaders"`
}

type sesCommonHeaders struct {
	ReturnPath string   `json:"returnPath"` // always: SES adds Return-Path itself, <> for bounces
	From       []string `json:"from,omitempty"`
	Date       string   `json:"date,omitempty"`
	To         []string `json:"to,omitempty"`
	Cc         []string `json:"cc,omitempty"`
	MessageID  string   `json:"messageId,omitempty"`
	Subject    string   `json:"subject,omitempty"`
}

type sesReceipt struct {
	Timestamp            sesTime                   `json:"timestamp"`
	ProcessingTimeMillis int64                     `json:"processingTimeMillis"`
	Recipients           []string                  `json:"recipients"`
	SpamVerdict          events.SimpleEmailVerdict `json:"spamVerdict"`
	VirusVerdict         events.SimpleEmailVerdict `json:"virusVerdict"`
	SPFVerdict           events.SimpleEmailVerdict `json:"spfVerdict"`
	DKIMVerdict          events.SimpleEmailVerdict `json:"dkimVerdict"`
	DMARCVerdict         events.SimpleEmailVerdict `json:"dmarcVerdict"`
	DMARCPolicy          string                    `json:"dmarcPolicy,omitempty"`
	Action               sesAction                 `json:"action"`
}

// sesAction has SES's field order for a Lambda action: type, functionArn, invocationType.
type sesAction struct {
	Type            string `json:"type"`
	FunctionARN     string `json:"functionArn,omitempty"`
	InvocationType  string `json:"invocationType,omitempty"`
	TopicARN        string `json:"topicArn,omitempty"`
	BucketName      string `json:"bucketName,omitempty"`
	ObjectKey       string `json:"objectKey,omitempty"`
	SMTPReplyCode   string `json:"smtpReplyCode,omitempty"`
	StatusCode      string `json:"statusCode,omitempty"`
	Message         string `json:"message,omitempty"`
	Sender          string `json:"sender,omitempty"`
	OrganizationARN string `json:"organizationArn,omitempty"`
}

type sesTime time.Time

func (t sesTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z") + `"`), nil
}
