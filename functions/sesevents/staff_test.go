package sesevents_test

import (
	"slices"
	"testing"

	"github.com/mailroom/mailroom/functions/sesevents"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/sesnotify"
)

// sendRecord is the sample Send event as a staff member's reply: sent through SES by a person's
// mail client, answering a customer's message.
func sendRecord(t *testing.T, extra ...sesnotify.Header) sesnotify.Record {
	t.Helper()
	records, err := sesevents.ParseRecords(sample(t, "eventbridge-send.json"))
	if err != nil || len(records) != 1 {
		t.Fatalf("records: %v %v", records, err)
	}
	r := records[0]
	delete(r.Mail.Tags, "mailroom-kind")
	r.Mail.Headers = append(r.Mail.Headers, extra...)
	return r
}

func TestStaffMessageFromSendEvent(t *testing.T) {
	r := sendRecord(t,
		sesnotify.Header{Name: "In-Reply-To", Value: "<m1@client.example>"},
		sesnotify.Header{Name: "References", Value: "<m0@client.example> <m1@client.example>"})
	m, ok := sesevents.StaffMessage(r)
	if !ok {
		t.Fatal("a staff reply was not read")
	}
	if !slices.Equal(m.InReplyTo, []string{"m1@client.example"}) || len(m.References) != 2 {
		t.Errorf("threading: in reply to %v, references %v", m.InReplyTo, m.References)
	}
	if m.From != "sales@example.com" || m.Subject != "Quote for 40 seats" || !m.At.Equal(r.Mail.Timestamp) {
		t.Errorf("message %+v", m)
	}
	// Replies to this one will name SES's id for it.
	if !slices.Equal(m.SESMessageIDs, []string{r.Mail.MessageID}) {
		t.Errorf("SES ids %v", m.SESMessageIDs)
	}
}

func TestStaffMessageLeavesOutMailroomsOwnAndAutomaticMail(t *testing.T) {
	own := sendRecord(t, sesnotify.Header{Name: "In-Reply-To", Value: "<m1@client.example>"})
	own.Mail.Tags[destinations.TagMessage] = []string{"0100inbound"}
	if _, ok := sesevents.StaffMessage(own); ok {
		t.Error("a message Mailroom sent (a forward, a notice) counted as staff mail")
	}
	auto := sendRecord(t, sesnotify.Header{Name: "In-Reply-To", Value: "<m1@client.example>"},
		sesnotify.Header{Name: "Auto-Submitted", Value: "auto-replied"})
	if _, ok := sesevents.StaffMessage(auto); ok {
		t.Error("a colleague's automatic reply counted as an answer")
	}
	delivery := sendRecord(t)
	delivery.EventType = sesnotify.EventDelivery
	if _, ok := sesevents.StaffMessage(delivery); ok {
		t.Error("a delivery event counted as a send")
	}
}
