package autoreply

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/mailroom/mailroom/shared/mail/mailtest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// ana is the replying mailbox in these tests; ana.silva@example.com is her alias.
const ana = "ana@example.com"

// personalMessage is what every rule lets through: Bruno writes to Ana, SES found nothing wrong.
func personalMessage(kind string) Incoming {
	return Incoming{
		Kind:         kind,
		EnvelopeFrom: "bruno@client.test",
		Recipient:    ana,
		Addresses:    []string{ana, "ana.silva@example.com"},
		Header: mail.Header{
			{Name: "Return-Path", Value: "<bruno@client.test>"},
			{Name: "From", Value: "Bruno Costa <bruno@client.test>"},
			{Name: "To", Value: "Ana Silva <ana@example.com>"},
			{Name: "Subject", Value: "Lunch on Friday?"},
			{Name: "Message-ID", Value: "<1@client.test>"},
			{Name: "Content-Type", Value: "text/plain; charset=utf-8"},
		},
		ContentType:       "text/plain",
		ContentTypeParams: map[string]string{"charset": "utf-8"},
		Verdicts: routing.Verdicts{Spam: routing.VerdictPass, Virus: routing.VerdictPass,
			SPF: routing.VerdictPass, DKIM: routing.VerdictPass, DMARC: routing.VerdictPass},
	}
}

// personal is an out-of-office personalMessage changed by edit.
func personal(edit func(in *Incoming)) Incoming {
	return personalOf(KindOutOfOffice, edit)
}

func personalOf(kind string, edit func(in *Incoming)) Incoming {
	in := personalMessage(kind)
	if edit != nil {
		edit(&in)
	}
	return in
}

// withFields is an out-of-office personalMessage with header fields added: name, value, ….
func withFields(nameValues ...string) Incoming {
	return personal(func(in *Incoming) { addFields(in, nameValues...) })
}

func addFields(in *Incoming, nameValues ...string) {
	h := slices.Clone(in.Header)
	for i := 0; i+1 < len(nameValues); i += 2 {
		h = append(h, mail.Field{Name: nameValues[i], Value: nameValues[i+1]})
	}
	in.Header = h
}

// setField replaces every field called name with one holding value, or removes them when
// value is "".
func setField(in *Incoming, name, value string) {
	h := slices.DeleteFunc(slices.Clone(in.Header), func(f mail.Field) bool { return strings.EqualFold(f.Name, name) })
	if value != "" {
		h = append(h, mail.Field{Name: name, Value: value})
	}
	in.Header = h
}

type ruleCase struct {
	name     string
	in       Incoming
	suppress bool // the rule forbids a reply; when false, the case is a near miss nothing forbids
}

// checkRule runs the check registered under id on each case, then Suppress: a case the rule
// catches must be reported as that rule, and a near miss must get a reply from Suppress.
func checkRule(t *testing.T, id string, cases []ruleCase) {
	t.Helper()
	var r *suppressRule
	for i := range suppressRules {
		if suppressRules[i].ID == id {
			r = &suppressRules[i]
		}
	}
	if r == nil {
		t.Fatalf("no rule %q", id)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			saw := r.check(&in)
			if got := saw != ""; got != c.suppress {
				t.Fatalf("%s: got %v (%q), want %v", id, got, saw, c.suppress)
			}
			v := Suppress(c.in)
			switch {
			case c.suppress && (v.Reply || v.Rule != id):
				t.Errorf("Suppress = %+v, want rule %s", v, id)
			case c.suppress && (v.Source != r.Source || v.Reason != saw+" ("+r.Source+")"):
				t.Errorf("Suppress = %+v, want reason %q and source %q", v, saw+" ("+r.Source+")", r.Source)
			case !c.suppress && !v.Reply:
				t.Errorf("a near miss was suppressed by %s: %s", v.Rule, v.Reason)
			}
		})
	}
}

func TestRFC3834_NullSender(t *testing.T) {
	checkRule(t, "null-sender", []ruleCase{
		{"empty", personal(func(in *Incoming) { in.EnvelopeFrom = "" }), true},
		{"angle brackets", personal(func(in *Incoming) { in.EnvelopeFrom = "<>" }), true},
		{"spaces", personal(func(in *Incoming) { in.EnvelopeFrom = " < > " }), true},
		{"no From and no envelope sender", personal(func(in *Incoming) {
			in.EnvelopeFrom = ""
			setField(in, "From", "")
		}), true},
		{"a sender", personal(func(in *Incoming) { in.EnvelopeFrom = "bruno@client.test" }), false},
		{"a sender in brackets", personal(func(in *Incoming) { in.EnvelopeFrom = "<bruno@client.test>" }), false},
		{"no From but an envelope sender", personal(func(in *Incoming) { setField(in, "From", "") }), false},
	})
}

func TestPigeonhole_SystemSender(t *testing.T) {
	envelope := func(kind, from string) Incoming {
		return personalOf(kind, func(in *Incoming) { in.EnvelopeFrom = from })
	}
	from := func(value string) Incoming {
		return personal(func(in *Incoming) { setField(in, "From", value) })
	}
	ooo, ack, closed := KindOutOfOffice, KindAcknowledgement, KindClosed
	checkRule(t, "system-sender", []ruleCase{
		// Pigeonhole's list.
		{"MAILER-DAEMON", envelope(ooo, "MAILER-DAEMON@mx.client.test"), true},
		{"bare MAILER-DAEMON", envelope(ooo, "MAILER-DAEMON"), true},
		{"LISTSERV", envelope(ooo, "LISTSERV@lists.client.test"), true},
		{"majordomo", envelope(ooo, "Majordomo@client.test"), true},
		{"owner- prefix", envelope(ooo, "owner-staff@client.test"), true},
		{"-request", envelope(ooo, "staff-request@lists.client.test"), true},
		{"-request inside", envelope(ooo, "staff-request-digest@lists.client.test"), true},
		// Mailroom's additions.
		{"-owner (Mailman)", envelope(ooo, "staff-owner@lists.client.test"), true},
		{"-bounces with VERP (Mailman)", envelope(ooo, "staff-bounces+ana=example.com@lists.client.test"), true},
		{"bulk sender bounces+", envelope(ack, "bounces+1234-abcd-ana=example.com@em.shop.test"), true},
		{"bulk sender bounce-", envelope(ack, "bounce-mc.us1_123.456-ana=example.com@mail.shop.test"), true},
		{"noreply", envelope(ooo, "noreply@shop.test"), true},
		{"no-reply", envelope(ooo, "No-Reply@shop.test"), true},
		{"do-not-reply", envelope(ooo, "do-not-reply@shop.test"), true},
		{"donotreply", envelope(ooo, "donotreply@shop.test"), true},
		{"noreply as first word", envelope(ooo, "noreply-dmarc-support@google.test"), true},
		{"no-reply as last word", envelope(ooo, "billing.no-reply@shop.test"), true},
		{"From no-reply, envelope a person's", from("Shop <no-reply@shop.test>"), true},
		{"From MAILER-DAEMON, second of two", from("bruno@client.test, MAILER-DAEMON@mx.client.test"), true},
		{"BATV-signed", envelope(ooo, "prvs=1234abcd56=owner-staff@client.test"), true},
		{"SRS-forwarded", envelope(ooo, "SRS0=HHH=TT=lists.client.test=staff-request@forwarder.test"), true},
		{"postmaster, acknowledgement", envelope(ack, "postmaster@client.test"), true},
		{"postmaster, closed mailbox", envelope(closed, "postmaster@client.test"), true},
		{"From postmaster, acknowledgement", personalOf(ack, func(in *Incoming) { setField(in, "From", "Postmaster <postmaster@client.test>") }), true},

		// Near misses.
		{"postmaster, out-of-office (RFC 5230 §4.6)", envelope(ooo, "postmaster@client.test"), false},
		{"requests", envelope(ooo, "requests@client.test"), false},
		{"owner", envelope(ooo, "owner@client.test"), false},
		{"mailer", envelope(ooo, "mailer@client.test"), false},
		{"bouncer", envelope(ooo, "bouncer@club.test"), false},
		{"reno-reply", envelope(ooo, "reno-reply@client.test"), false},
		{"replies", envelope(ooo, "replies@client.test"), false},
		{"noreplyish word", envelope(ooo, "noreplyguy@client.test"), false},
		{"owner- in the domain", envelope(ooo, "bruno@owner-lists.client.test"), false},
		{"From MAILER-DAEMON as a name only", from(`"MAILER-DAEMON" <bruno@client.test>`), false},
	})
}

// TestPigeonhole_SystemSenderSpellings: the system names of Pigeonhole's list as real bounces
// spell them. Verizon's SMS gateway bounces from post_master@ (sisimai's lhost-apachejames-01);
// an Exchange server that qualified an already qualified address sent flufl.bounce's simple_35
// from <Postmaster\@xxx.com@xxx.com>.
func TestPigeonhole_SystemSenderSpellings(t *testing.T) {
	envelope := func(kind, from string) Incoming {
		return personalOf(kind, func(in *Incoming) { in.EnvelopeFrom = from })
	}
	from := func(kind, value string) Incoming {
		return personalOf(kind, func(in *Incoming) { setField(in, "From", value) })
	}
	ooo, ack, closed := KindOutOfOffice, KindAcknowledgement, KindClosed
	checkRule(t, "system-sender", []ruleCase{
		{"post_master (Verizon)", from(ack, "post_master@vtext.client.test"), true},
		{"Post.Master", envelope(closed, "Post.Master@client.test"), true},
		{"post-master", envelope(ack, "post-master@client.test"), true},
		{"mailer_daemon", envelope(ooo, "mailer_daemon@mx.client.test"), true},
		{"MailerDaemon", from(ooo, "MailerDaemon@mx.client.test"), true},
		{"a whole address as local part", from(ack, `<Postmaster\@client.test@client.test>`), true},
		{"a whole address, envelope", envelope(ack, `Postmaster\@client.test@client.test`), true},
		{"a quoted whole address", envelope(ooo, `"MAILER-DAEMON@mx.client.test"@relay.client.test`), true},

		{"post_master, out-of-office (RFC 5230 §4.6)", from(ooo, "post_master@vtext.client.test"), false},
		{"a whole postmaster address, out-of-office", from(ooo, `<Postmaster\@client.test@client.test>`), false},
		{"postmasters-guild", envelope(ack, "postmasters-guild@club.test"), false},
		{"postmaster.general", envelope(ack, "postmaster.general@post.test"), false},
		{"post@master", envelope(ack, "post@master.client.test"), false},
		{"mailer-daemons", envelope(ack, "mailer-daemons@club.test"), false},
		{"SMTP in a service name", envelope(ack, "E500_SMTP_Mail_Service@client.test"), false},
		{"a person's quoted local part with @", envelope(ack, `"bruno@home"@client.test`), false},
	})
}

func TestRFC3834_AutoSubmitted(t *testing.T) {
	checkRule(t, "auto-submitted", []ruleCase{
		{"auto-replied", withFields("Auto-Submitted", "auto-replied"), true},
		{"auto-generated", withFields("Auto-Submitted", "auto-generated"), true},
		{"with a comment", withFields("Auto-Submitted", "Auto-Replied (vacation)"), true},
		{"auto-notified with parameters (RFC 5436)", withFields("Auto-Submitted", "auto-notified; owner-email=ana@example.com"), true},
		{"upper case", withFields("AUTO-SUBMITTED", "AUTO-GENERATED"), true},
		{"an unknown keyword", withFields("Auto-Submitted", "auto-forwarded"), true},
		{"empty", withFields("Auto-Submitted", ""), true},
		{"second field not no", withFields("Auto-Submitted", "no", "Auto-Submitted", "auto-replied"), true},

		{"no", withFields("Auto-Submitted", "no"), false},
		{"No", withFields("Auto-Submitted", "No"), false},
		{"no with a comment", withFields("Auto-Submitted", "no (a person wrote this)"), false},
		{"no with parameters", withFields("Auto-Submitted", " no ; x=y"), false},
		{"another field", withFields("X-Auto-Submitted-Note", "auto-replied"), false},
	})
}

func TestPigeonhole_ListHeaders(t *testing.T) {
	cases := []ruleCase{
		{"lower-case name", withFields("list-id", "<staff.lists.client.test>"), true},
		{"empty value", withFields("List-Unsubscribe", ""), true},
	}
	for _, name := range []string{"List-Id", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Post",
		"List-Owner", "List-Archive", "Mailing-List", "X-Mailing-List"} {
		cases = append(cases, ruleCase{name, withFields(name, "<mailto:staff@lists.client.test>"), true})
	}
	cases = append(cases,
		ruleCase{"a list address only in Cc", withFields("Cc", "staff@lists.client.test"), false},
		ruleCase{"a list address in Reply-To", withFields("Reply-To", "staff@lists.client.test"), false},
		ruleCase{"List in another field's name", withFields("X-Listing-Id", "42"), false},
	)
	checkRule(t, "list-headers", cases)
}

func TestPigeonhole_Precedence(t *testing.T) {
	checkRule(t, "precedence", []ruleCase{
		{"bulk", withFields("Precedence", "bulk"), true},
		{"list", withFields("Precedence", "list"), true},
		{"junk", withFields("Precedence", "junk"), true},
		{"case and spaces", withFields("precedence", "  Bulk "), true},
		{"with a comment", withFields("Precedence", "junk (newsletter)"), true},
		{"auto_reply (cPanel)", withFields("Precedence", "auto_reply"), true},
		{"X-Precedence", withFields("X-Precedence", "bulk"), true},
		{"second field", withFields("Precedence", "normal", "Precedence", "list"), true},

		{"first-class", withFields("Precedence", "first-class"), false},
		{"special-delivery", withFields("Precedence", "special-delivery"), false},
		{"bulky", withFields("Precedence", "bulky"), false},
		{"empty", withFields("Precedence", ""), false},
	})
}

func TestMSOXCMAIL_AutoResponseSuppress(t *testing.T) {
	field := func(kind, value string) Incoming {
		return personalOf(kind, func(in *Incoming) { addFields(in, "X-Auto-Response-Suppress", value) })
	}
	ooo, ack, closed := KindOutOfOffice, KindAcknowledgement, KindClosed
	checkRule(t, "x-auto-response-suppress", []ruleCase{
		{"All, out-of-office", field(ooo, "All"), true},
		{"OOF, out-of-office", field(ooo, "OOF"), true},
		{"oof, out-of-office", field(ooo, "oof"), true},
		{"a list with OOF", field(ooo, "DR, RN, NRN, OOF, AutoReply"), true},
		{"All, acknowledgement", field(ack, "All"), true},
		{"AutoReply, acknowledgement", field(ack, "AutoReply"), true},
		{"AutoReply, closed mailbox", field(closed, "AutoReply"), true},
		{"AutoReply among others, acknowledgement", field(ack, "DR,NDR,AutoReply"), true},

		{"DR only (delivery receipts), out-of-office", field(ooo, "DR"), false},
		{"reports only, out-of-office", field(ooo, "DR, NDR, RN, NRN"), false},
		{"AutoReply (other than OOF), out-of-office", field(ooo, "AutoReply"), false},
		{"None, out-of-office", field(ooo, "None"), false},
		{"OOF, acknowledgement", field(ack, "OOF"), false},
		{"OOF, closed mailbox", field(closed, "OOF"), false},
		{"DR, acknowledgement", field(ack, "DR"), false},
		{"Allow is not All", field(ooo, "Allow"), false},
	})
}

func TestRFC6522_DeliveryReport(t *testing.T) {
	typed := func(typ string, params map[string]string) Incoming {
		return personal(func(in *Incoming) { in.ContentType, in.ContentTypeParams = typ, params })
	}
	checkRule(t, "delivery-report", []ruleCase{
		{"delivery status", typed("multipart/report", map[string]string{"report-type": "delivery-status"}), true},
		{"disposition notification", typed("multipart/report", map[string]string{"report-type": "disposition-notification"}), true},
		{"feedback report", typed("multipart/report", map[string]string{"report-type": "feedback-report"}), true},
		{"no report-type", typed("multipart/report", nil), true},
		{"bare message/delivery-status", typed("message/delivery-status", nil), true},
		{"bare message/global-delivery-status", typed("message/global-delivery-status", nil), true},
		{"bare message/feedback-report", typed("message/feedback-report", nil), true},
		{"multipart/mixed with a report-type", typed("multipart/mixed", map[string]string{"report-type": "delivery-status"}), true},
		{"type only in the header", personal(func(in *Incoming) {
			in.ContentType, in.ContentTypeParams = "", nil
			setField(in, "Content-Type", "Multipart/Report; report-type=delivery-status; boundary=x")
		}), true},
		{"X-Failed-Recipients (Exim)", withFields("X-Failed-Recipients", "bo@client.test"), true},

		{"multipart/mixed", typed("multipart/mixed", map[string]string{"boundary": "x"}), false},
		{"a forwarded message", typed("message/rfc822", nil), false},
		{"a report's headers part only", personal(func(in *Incoming) {
			in.ContentType, in.PartTypes = "multipart/mixed", []string{"text/rfc822-headers"}
		}), false},
		{"report-type on text", typed("text/plain", map[string]string{"report-type": "delivery-status"}), false},
	})
}

// TestRFC6522_ReportPartBelowTopLevel: a report wrapped in another multipart is still a report.
// Lotus Domino sends its DSNs as a multipart/mixed holding the multipart/report (sisimai's
// lhost-domino-03), and gateways that add a footer wrap what they pass on.
func TestRFC6522_ReportPartBelowTopLevel(t *testing.T) {
	parts := func(top string, types ...string) Incoming {
		return personal(func(in *Incoming) { in.ContentType, in.ContentTypeParams, in.PartTypes = top, nil, types })
	}
	checkRule(t, "delivery-report", []ruleCase{
		{"DSN inside multipart/mixed (Domino)", parts("multipart/mixed", "message/delivery-status", "message/rfc822"), true},
		{"DSN after a footer", parts("multipart/mixed", "message/delivery-status", "text/rfc822-headers", "image/png"), true},
		{"global DSN", parts("multipart/mixed", "message/global-delivery-status"), true},
		{"feedback report", parts("multipart/mixed", "message/feedback-report", "message/rfc822"), true},
		{"read receipt", parts("multipart/alternative", "message/disposition-notification"), true},
		{"a caller that lists containers too", parts("multipart/mixed", "multipart/report"), true},

		{"a forwarded message", parts("multipart/mixed", "message/rfc822"), false},
		{"original headers only", parts("multipart/mixed", "text/rfc822-headers"), false},
		{"attachments", parts("multipart/mixed", "application/pdf", "image/png"), false},
		{"no parts listed", parts("multipart/mixed"), false},
	})
}

func TestPartTypesOf(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		want      []string
	}{
		{"a report wrapped in multipart/mixed", "From: Postmaster@client.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" +
			"--a\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nnot delivered\r\n" +
			"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.test\r\n\r\nAction: failed\r\n" +
			"--b--\r\n--a\r\nContent-Type: image/png; name=logo.png\r\n\r\nPNG\r\n--a--\r\n",
			[]string{"message/delivery-status", "image/png"}},
		{"a bounce forwarded as an attachment", "From: bruno@client.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" +
			"--a\r\nContent-Type: text/plain\r\n\r\nWhy did this bounce?\r\n" +
			"--a\r\nContent-Type: message/rfc822\r\n\r\n" +
			"From: MAILER-DAEMON@mx.client.test\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nnot delivered\r\n" +
			"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--\r\n--a--\r\n",
			[]string{"message/rfc822"}},
		{"plain text", "From: bruno@client.test\r\nContent-Type: text/plain\r\n\r\nhi\r\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := mail.Parse(strings.NewReader(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := PartTypesOf(m); !slices.Equal(got, c.want) {
				t.Errorf("PartTypesOf = %q, want %q", got, c.want)
			}
		})
	}
}

// TestSisimai_HotmailComplaint: Hotmail's spam complaints before ARF, which Amazon SES's complaint
// notifications still follow, are a multipart/mixed holding the complained-of message and no
// report part. sisimai (Sisimai::ARF, go-sisimai arf.isARF) knows them by their sender and
// Subject; its set-of-emails has three (arf-22, -23, -24).
func TestSisimai_HotmailComplaint(t *testing.T) {
	complaint := func(from, subject, typ string) Incoming {
		return personal(func(in *Incoming) {
			setField(in, "From", from)
			setField(in, "Subject", subject)
			in.ContentType, in.ContentTypeParams, in.PartTypes = typ, nil, []string{"message/rfc822"}
		})
	}
	const ip = "complaint about message from 192.0.2.222"
	checkRule(t, "delivery-report", []ruleCase{
		{"Hotmail", complaint("staff@hotmail.com", " "+ip, "multipart/mixed"), true},
		{"Hotmail in brackets", complaint("<staff@hotmail.com>", ip, "multipart/mixed"), true},
		{"Hotmail, upper case", complaint("Staff@Hotmail.com", "Complaint About Message From 192.0.2.222", "multipart/mixed"), true},
		{"Amazon SES", complaint("complaints@email-abuse.amazonses.com", ip, "multipart/mixed"), true},

		{"not multipart", complaint("staff@hotmail.com", ip, "text/plain"), false},
		{"another Subject from Hotmail", complaint("staff@hotmail.com", "Your account", "multipart/mixed"), false},
		{"the Subject from a person", complaint("bruno@client.test", ip, "multipart/mixed"), false},
		{"a reply to a complaint", complaint("staff@hotmail.com", "Re: "+ip, "multipart/mixed"), false},
		{"a look-alike sender", complaint("staff@hotmail.com.client.test", ip, "multipart/mixed"), false},
	})
}

func TestMultiMail_AutoReplyMarkers(t *testing.T) {
	subject := func(s string) Incoming {
		return personal(func(in *Incoming) { setField(in, "Subject", s) })
	}
	checkRule(t, "other-auto-reply-markers", []ruleCase{
		{"X-Autoreply (Gmail)", withFields("X-Autoreply", "yes"), true},
		{"X-Autorespond (cPanel)", withFields("X-Autorespond", "Ana is away"), true},
		{"X-AutoReply-From", withFields("X-AutoReply-From", "ana@example.com"), true},
		{"X-Mail-Autoreply", withFields("X-Mail-Autoreply", "yes"), true},
		{"X-Autogenerated: Reply", withFields("X-Autogenerated", "Reply"), true},
		{"X-Autogenerated: Forward", withFields("X-Autogenerated", "Forward"), true},
		{"X-FC-MachineGenerated", withFields("X-FC-MachineGenerated", "true"), true},
		{"X-POST-MessageClass", withFields("X-POST-MessageClass", "9; Autoresponder"), true},
		{"Delivered-To: Autoresponder (qmail)", withFields("Delivered-To", "Autoresponder"), true},
		{"Lotus Notes subject", subject("AUTO: Ana Silva is out of the office (returning 05/01/2026)"), true},
		{"Auto: prefix (RFC 3834 §3.1.5)", subject("Auto: Lunch on Friday?"), true},
		{"encoded Auto: prefix", subject("=?utf-8?q?Auto:_F=C3=A9rias?="), true},

		{"X-Autogenerated: Copy", withFields("X-Autogenerated", "Copy"), false},
		{"X-FC-MachineGenerated: false", withFields("X-FC-MachineGenerated", "false"), false},
		{"Delivered-To a person", withFields("Delivered-To", "ana@example.com"), false},
		{"Automobile", subject("Automobile insurance"), false},
		{"Autumn", subject("Autumn plans"), false},
		{"a person answering an automatic reply", subject("Re: Auto: Lunch on Friday?"), false},
		{"Auto without a colon", subject("Auto parts order"), false},
	})
}

// TestBounceParser_ChallengeResponse: a challenge-response system's request to confirm is an
// automatic reply. Mail::DeliveryStatus::BounceParser's corpus has Bluebottle's, which is
// text/plain from the challenged address and marked only by X-Bluebottle-* fields.
func TestBounceParser_ChallengeResponse(t *testing.T) {
	checkRule(t, "other-auto-reply-markers", []ruleCase{
		{"Bluebottle", withFields("X-Bluebottle-Request", "<1234>", "X-Bluebottle-Address", "<bruno@client.test>", "X-Bluebottle-Subject", "Lunch on Friday?"), true},
		{"Bluebottle, lower-case name", withFields("x-bluebottle-request", "<1234>"), true},

		// tmda-sendmail stamps every message of a TMDA user; TMDA's challenges also carry
		// Auto-Submitted and Precedence: bulk.
		{"a TMDA user's own message", withFields("X-Delivery-Agent", "TMDA/1.1.12 (Macallan)"), false},
		{"Bluebottle only in a name", personal(func(in *Incoming) { setField(in, "From", "Bluebottle Coffee <bruno@client.test>") }), false},
	})
}

// TestSisimai_NonDeliverySubject: the Subjects MTAs give their non-delivery notices, as sisimai
// (lhost/order.go and its lhost modules) and PHP-Bounce-Handler list them and the corpus shows
// them, for the MTAs that send them without any other mark.
func TestSisimai_NonDeliverySubject(t *testing.T) {
	subject := func(s string) Incoming {
		return personal(func(in *Incoming) { setField(in, "Subject", s) })
	}
	ack := func(s string) Incoming {
		return personalOf(KindAcknowledgement, func(in *Incoming) { setField(in, "Subject", s) })
	}
	checkRule(t, "non-delivery-subject", []ruleCase{
		{"Postfix", subject("Undelivered Mail Returned to Sender"), true},
		{"Postfix delay", subject("Delayed Mail (still being retried)"), true},
		{"Sendmail", subject("Returned mail: see transcript for details"), true},
		{"Sendmail delay", subject("Warning: could not send message for past 4 hours"), true},
		{"Sendmail, the postmaster's copy", subject("Postmaster notify: see transcript for details"), true},
		{"Returned Mail - (flufl.bounce bounce_02)", subject("Returned Mail - Error During Delivery"), true},
		{"Exim", subject("Mail delivery failed: returning message to sender"), true},
		{"Exchange", subject("Undeliverable: Lunch on Friday?"), true},
		{"Exchange DSN", ack("Delivery Status Notification (Failure)"), true},
		{"Exchange, French", subject("Non remis : Déjeuner vendredi ?"), true},
		{"Exchange, German", subject("Unzustellbar: Mittagessen"), true},
		{"Exchange, Italian", subject("Non recapitabile: Pranzo"), true},
		{"qmail", subject("failure notice"), true},
		{"Domino", subject("DELIVERY FAILURE: User bo (bo@client.test) not listed in Domino Directory"), true},
		{"Messaging Server", subject("Delivery Notification: Delivery has failed"), true},
		{"IMail", subject(`Undeliverable Mail: "Lunch on Friday?"`), true},
		{"encoded", subject("=?utf-8?q?Non_remis_=3A_D=C3=A9jeuner?="), true},
		{"folded", subject("Returned\tmail:   see transcript"), true},
		{"a forwarded bounce (sisimai lhost-sendmail-14)", subject("Fwd: Returned mail: see transcript for details"), true},
		{"a rule's forward", subject("FW: Undeliverable: Lunch on Friday?"), true},
		{"Re: without a space", subject("Re:Re: failure notice"), true},
		{"AW:", subject("AW: Unzustellbar: Mittagessen"), true},
		{"TR: with a space before the colon", subject("TR : Non remis : Déjeuner"), true},
		{"at the end (flufl.bounce simple_20)", subject("RE: Your message to GPC-talk awaits moderator approval : non remis\t(delivery failed)"), true},

		{"returned mail, a person's words", subject("Returned mail from the old office"), false},
		{"a parcel", ack("Delivery failure - parcel 123"), false},
		{"a parcel, French", ack("Colis non remis"), false},
		{"a parcel, German", ack("Unzustellbare Sendung"), false},
		{"a parcel returned", ack("Fwd: Your parcel was returned to sender"), false},
		{"a delivery problem", ack("Delivery problem with order 123"), false},
		{"the help desk", ack("Mail system error"), false},
		{"mail delivery failed to a customer", ack("Mail delivery failed to our customer"), false},
		{"an address", ack("Undeliverable address on the invoice"), false},
		{"plural", subject("Failure notices for the third quarter"), false},
		{"message delayed", subject("Message delayed"), false},
		{"the words elsewhere", subject("About the undeliverable: notices"), false},
		{"no Subject", personal(func(in *Incoming) { setField(in, "Subject", "") }), false},
	})
}

func TestMailroom_LoopMark(t *testing.T) {
	checkRule(t, "mailroom-loop", []ruleCase{
		{"forwarded through another address", withFields("X-Mailroom-Loop", "sales@example.com"), true},
		{"forwarded through this mailbox", withFields("X-Mailroom-Loop", ana), true},
		{"a list of marks", withFields("X-Mailroom-Loop", "sales@example.com, team@example.com"), true},
		{"lower-case name", withFields("x-mailroom-loop", "sales@example.com"), true},
		{"acknowledgement", personalOf(KindAcknowledgement, func(in *Incoming) { addFields(in, "X-Mailroom-Loop", "sales@example.com") }), true},

		{"another system's loop guard", withFields("X-Loop", ana), false},
		{"a similar name", withFields("X-Mailroom-Loopback", "sales@example.com"), false},
	})
}

func TestRFC5230_NotAddressedDirectly(t *testing.T) {
	to := func(kind string, nameValues ...string) Incoming {
		return personalOf(kind, func(in *Incoming) {
			setField(in, "To", "")
			addFields(in, nameValues...)
		})
	}
	ooo := KindOutOfOffice
	checkRule(t, "not-addressed-directly", []ruleCase{
		{"to a group", to(ooo, "To", "Team <team@example.com>"), true},
		{"to a list", to(ooo, "To", "staff@lists.client.test"), true},
		{"blind copy", to(ooo, "To", "undisclosed-recipients:;"), true},
		{"no recipient fields", to(ooo), true},
		{"someone else in To and Cc", to(ooo, "To", "carla@example.com", "Cc", "dan@client.test"), true},
		{"a look-alike", to(ooo, "To", "ana@example.com.client.test, xana@example.com"), true},
		{"the name only", to(ooo, "To", `"ana@example.com" <carla@example.com>`), true},
		{"own address only in From", to(ooo, "To", "team@example.com", "From", ana), true},

		{"To", to(ooo, "To", ana), false},
		{"To, upper case", to(ooo, "To", "Ana <ANA@EXAMPLE.COM>"), false},
		{"Cc", to(ooo, "To", "team@example.com", "Cc", ana), false},
		{"Bcc", to(ooo, "To", "team@example.com", "Bcc", ana), false},
		{"Resent-To", to(ooo, "To", "team@example.com", "Resent-To", ana), false},
		{"Resent-Cc", to(ooo, "To", "team@example.com", "Resent-Cc", ana), false},
		{"Resent-Bcc", to(ooo, "To", "team@example.com", "Resent-Bcc", ana), false},
		{"an alias", to(ooo, "To", "ana.silva@example.com"), false},
		{"a plus-address", to(ooo, "To", "ana+travel@example.com"), false},
		{"in a group list", to(ooo, "To", "friends: bo@client.test, ana@example.com;"), false},
		{"among many", to(ooo, "To", "a@client.test, b@client.test, Ana Silva <ana@example.com>, c@client.test"), false},
		{"acknowledgement to a group", to(KindAcknowledgement, "To", "team@example.com"), false},
		{"closed mailbox through a group", to(KindClosed, "To", "team@example.com"), false},
	})
}

func verdicts(edit func(v *routing.Verdicts)) Incoming {
	return personal(func(in *Incoming) { edit(&in.Verdicts) })
}

func TestSES_Spam(t *testing.T) {
	checkRule(t, "spam", []ruleCase{
		{"FAIL", verdicts(func(v *routing.Verdicts) { v.Spam = routing.VerdictFail }), true},
		{"fail", verdicts(func(v *routing.Verdicts) { v.Spam = "fail" }), true},

		{"PASS", verdicts(func(v *routing.Verdicts) { v.Spam = routing.VerdictPass }), false},
		{"GRAY", verdicts(func(v *routing.Verdicts) { v.Spam = routing.VerdictGray }), false},
		{"PROCESSING_FAILED", verdicts(func(v *routing.Verdicts) { v.Spam = routing.VerdictProcessingFailed }), false},
		{"DISABLED", verdicts(func(v *routing.Verdicts) { v.Spam = routing.VerdictDisabled }), false},
		{"none", verdicts(func(v *routing.Verdicts) { v.Spam = "" }), false},
	})
}

func TestSES_Virus(t *testing.T) {
	checkRule(t, "virus", []ruleCase{
		{"FAIL", verdicts(func(v *routing.Verdicts) { v.Virus = routing.VerdictFail }), true},

		{"PASS", verdicts(func(v *routing.Verdicts) { v.Virus = routing.VerdictPass }), false},
		{"GRAY", verdicts(func(v *routing.Verdicts) { v.Virus = routing.VerdictGray }), false},
		{"PROCESSING_FAILED", verdicts(func(v *routing.Verdicts) { v.Virus = routing.VerdictProcessingFailed }), false},
		{"none", verdicts(func(v *routing.Verdicts) { v.Virus = "" }), false},
	})
}

func TestDMARC_ForgedSender(t *testing.T) {
	checkRule(t, "dmarc-fail", []ruleCase{
		{"FAIL", verdicts(func(v *routing.Verdicts) { v.DMARC = routing.VerdictFail }), true},
		{"FAIL with SPF and DKIM failing too", verdicts(func(v *routing.Verdicts) {
			v.DMARC, v.SPF, v.DKIM = routing.VerdictFail, routing.VerdictFail, routing.VerdictFail
		}), true},

		{"PASS", verdicts(func(v *routing.Verdicts) { v.DMARC = routing.VerdictPass }), false},
		{"GRAY (no policy)", verdicts(func(v *routing.Verdicts) { v.DMARC = routing.VerdictGray }), false},
		{"none", verdicts(func(v *routing.Verdicts) { v.DMARC = "" }), false},
		{"SPF FAIL alone (forwarded)", verdicts(func(v *routing.Verdicts) { v.SPF = routing.VerdictFail }), false},
	})
}

func TestPigeonhole_SenderIsRecipient(t *testing.T) {
	envelope := func(from string) Incoming {
		return personal(func(in *Incoming) { in.EnvelopeFrom = from })
	}
	checkRule(t, "sender-is-recipient", []ruleCase{
		{"the recipient", envelope(ana), true},
		{"an alias", envelope("ana.silva@example.com"), true},
		{"upper case", envelope("ANA@Example.COM"), true},
		{"in brackets", envelope("<ana@example.com>"), true},
		{"SRS-forwarded back", envelope("SRS0=HHH=TT=example.com=ana@forwarder.test"), true},

		{"same name, other domain", envelope("ana@example.org"), false},
		{"a colleague", envelope("carla@example.com"), false},
		{"own address only in From", personal(func(in *Incoming) { setField(in, "From", ana) }), false},
	})
}

func TestSuppress_PersonalMessageGetsReply(t *testing.T) {
	for _, kind := range []string{KindOutOfOffice, KindAcknowledgement, KindClosed} {
		got := Suppress(personalMessage(kind))
		if got != (Verdict{Reply: true}) {
			t.Errorf("%s: Suppress = %+v, want a reply", kind, got)
		}
		if b, _ := json.Marshal(got); string(b) != `{"reply":true}` {
			t.Errorf("%s: JSON %s", kind, b)
		}
	}
}

func TestSuppress_Verdict(t *testing.T) {
	got := Suppress(withFields("Auto-Submitted", "auto-replied"))
	want := Verdict{
		Rule:   "auto-submitted",
		Reason: "Auto-Submitted: auto-replied (RFC 3834 §2, §5; RFC 5230 §4.6)",
		Source: "RFC 3834 §2, §5; RFC 5230 §4.6",
	}
	if got != want {
		t.Errorf("Suppress = %+v, want %+v", got, want)
	}
	b, _ := json.Marshal(got)
	if want := `{"reply":false,"rule":"auto-submitted","reason":"Auto-Submitted: auto-replied (RFC 3834 §2, §5; RFC 5230 §4.6)","source":"RFC 3834 §2, §5; RFC 5230 §4.6"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

// ruleTriggers make a message break one rule each without breaking any other.
var ruleTriggers = map[string]func(in *Incoming){
	"null-sender":              func(in *Incoming) { in.EnvelopeFrom = "" },
	"system-sender":            func(in *Incoming) { in.EnvelopeFrom = "MAILER-DAEMON@mx.client.test" },
	"auto-submitted":           func(in *Incoming) { addFields(in, "Auto-Submitted", "auto-generated") },
	"list-headers":             func(in *Incoming) { addFields(in, "List-Id", "<staff.lists.client.test>") },
	"precedence":               func(in *Incoming) { addFields(in, "Precedence", "bulk") },
	"x-auto-response-suppress": func(in *Incoming) { addFields(in, "X-Auto-Response-Suppress", "All") },
	"delivery-report": func(in *Incoming) {
		in.ContentType, in.ContentTypeParams = "multipart/report", map[string]string{"report-type": "delivery-status"}
	},
	"other-auto-reply-markers": func(in *Incoming) { addFields(in, "X-Autoreply", "yes") },
	"non-delivery-subject":     func(in *Incoming) { setField(in, "Subject", "Undeliverable: Lunch on Friday?") },
	"mailroom-loop":            func(in *Incoming) { addFields(in, "X-Mailroom-Loop", "sales@example.com") },
	"not-addressed-directly":   func(in *Incoming) { in.Kind = KindOutOfOffice; setField(in, "To", "team@example.com") },
	"spam":                     func(in *Incoming) { in.Verdicts.Spam = routing.VerdictFail },
	"virus":                    func(in *Incoming) { in.Verdicts.Virus = routing.VerdictFail },
	"dmarc-fail":               func(in *Incoming) { in.Verdicts.DMARC = routing.VerdictFail },
	"sender-is-recipient":      func(in *Incoming) { in.EnvelopeFrom = ana },
}

// TestRules_EveryRuleInOrder breaks the rules of one message one at a time from the last
// listed to the first: each time Suppress must report the rule just broken, which shows that it
// applies every listed rule and in the listed order, and an id it reports that Rules does not
// list fails.
func TestRules_EveryRuleInOrder(t *testing.T) {
	list := Rules()
	if len(list) != len(ruleTriggers) {
		t.Errorf("Rules lists %d rules, the test knows %d", len(list), len(ruleTriggers))
	}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, r := range list {
		if !kebab.MatchString(r.ID) || seen[r.ID] || r.Source == "" || r.Description == "" {
			t.Errorf("rule %+v: want a unique kebab-case id, a source and a description", r)
		}
		seen[r.ID] = true
	}
	in := personalMessage(KindAcknowledgement)
	for i := len(list) - 1; i >= 0; i-- {
		trigger, ok := ruleTriggers[list[i].ID]
		if !ok {
			t.Fatalf("no trigger for rule %q", list[i].ID)
		}
		trigger(&in)
		if got := Suppress(in); got.Reply || got.Rule != list[i].ID || got.Source != list[i].Source {
			t.Fatalf("after breaking %s: Suppress = %+v", list[i].ID, got)
		}
	}
}

func FuzzSuppress(f *testing.F) {
	f.Add("From: bruno@client.test\r\nTo: ana@example.com\r\nSubject: hi\r\n\r\nbody", "bruno@client.test", uint8(0))
	f.Add("Auto-Submitted: auto-replied (\r\nPrecedence: (((bulk\r\nX-Auto-Response-Suppress: ,,;;OOF\r\n\r\n", "<>", uint8(1))
	f.Add("To: friends: ana@example.com;\r\nResent-To: \"\\\r\nContent-Type: multipart/report; report-type=\r\n\r\n", "SRS1=x==", uint8(0))
	f.Add("Subject: =?utf-8?b?QXV0bzo=?=\r\nFrom: <MAILER-DAEMON>\r\nX-Mailroom-Loop: ,\r\n\r\n", "prvs==@", uint8(2))
	f.Add("Subject: Auto\xff:\r\nTo: \xe2\x80\r\n\r\n", "btv1====@x", uint8(3))
	f.Add("Subject: RE:re :Fwd: Non remis\r\nFrom: <Postmaster\\@x@y>\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/feedback-report\r\n\r\n--a--\r\n", "post_master@x", uint8(1))
	rules := map[string]bool{}
	for _, r := range Rules() {
		rules[r.ID] = true
	}
	f.Fuzz(func(t *testing.T, raw, envelope string, kind uint8) {
		m, err := mail.Parse(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		in := Incoming{
			Kind:              []string{KindOutOfOffice, KindAcknowledgement, KindClosed, "unknown"}[kind%4],
			EnvelopeFrom:      envelope,
			Recipient:         ana,
			Addresses:         []string{ana, envelope},
			Header:            m.Header,
			ContentType:       m.ContentType,
			ContentTypeParams: m.ContentTypeParams,
			PartTypes:         PartTypesOf(m),
			Verdicts:          routing.Verdicts{Spam: envelope, DMARC: raw[:min(len(raw), 4)]},
		}
		v := Suppress(in)
		if v.Reply {
			if v != (Verdict{Reply: true}) {
				t.Fatalf("a reply with a reason: %+v", v)
			}
			return
		}
		if !rules[v.Rule] || v.Source == "" || !strings.HasSuffix(v.Reason, " ("+v.Source+")") {
			t.Fatalf("verdict %+v: unlisted rule or no reason", v)
		}
		if len(v.Reason) > 1000 || strings.ContainsAny(v.Reason, "\r\n") {
			t.Fatalf("reason is not one short line: %q", v.Reason)
		}
		if utf8.ValidString(envelope) && utf8.ValidString(raw) && !utf8.ValidString(v.Reason) {
			t.Fatalf("reason is not UTF-8: %q", v.Reason)
		}
	})
}

// corpusRecipient appears in no corpus message, so not-addressed-directly (out-of-office
// only) would not apply anyway; the corpus runs as acknowledgements.
const corpusRecipient = "autoreply-test@mailroom.invalid"

// TestCorpusSuppression runs Suppress over the real-message corpus, as a group's
// acknowledgement: no bounce, automatic reply or list post may get one, and no person's message
// (ham) may be taken for a bounce by its Subject alone. Spam is counted, not asserted: the corpus
// has no SES verdicts, which are what stop spam in production (the spam and dmarc-fail rules).
func TestCorpusSuppression(t *testing.T) {
	dir, err := mailtest.CorpusDir()
	if err != nil {
		t.Skipf("corpus not found: %v", err)
	}
	manifest, err := os.Open(filepath.Join(dir, "manifest.tsv"))
	if os.IsNotExist(err) {
		t.Skipf("no corpus at %s (it is a team folder, not part of the repository; set MAILROOM_CORPUS to run against one)", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer manifest.Close()

	type tally struct {
		replied, suppressed int
		rules               map[string]int
	}
	tallies := map[string]*tally{}
	strict := map[string]bool{"bounce": true, "autoreply": true, "list": true}
	sc := bufio.NewScanner(manifest)
	for line := 0; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		if line == 0 || len(cols) < 3 {
			continue // the column names
		}
		path, category := cols[0], cols[2]
		f, err := os.Open(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		m, err := mail.Parse(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		v := Suppress(Incoming{
			Kind:              KindAcknowledgement,
			EnvelopeFrom:      corpusEnvelope(m),
			Recipient:         corpusRecipient,
			Addresses:         []string{corpusRecipient},
			Header:            m.Header,
			ContentType:       m.ContentType,
			ContentTypeParams: m.ContentTypeParams,
			PartTypes:         PartTypesOf(m),
		})
		tl := tallies[category]
		if tl == nil {
			tl = &tally{rules: map[string]int{}}
			tallies[category] = tl
		}
		if v.Reply {
			tl.replied++
		} else {
			tl.suppressed++
			tl.rules[v.Rule]++
		}
		switch {
		case strict[category] && v.Reply:
			t.Errorf("%s (%s): would get an acknowledgement", path, category)
		case category == "ham" && v.Rule == "non-delivery-subject":
			t.Errorf("%s (ham): taken for a bounce: %s", path, v.Reason)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tallies) == 0 {
		t.Fatal("the manifest lists no messages")
	}
	categories := make([]string, 0, len(tallies))
	for c := range tallies {
		categories = append(categories, c)
	}
	sort.Strings(categories)
	for _, c := range categories {
		tl := tallies[c]
		ids := make([]string, 0, len(tl.rules))
		for id := range tl.rules {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool {
			return tl.rules[ids[i]] > tl.rules[ids[j]] || tl.rules[ids[i]] == tl.rules[ids[j]] && ids[i] < ids[j]
		})
		by := make([]string, len(ids))
		for i, id := range ids {
			by[i] = fmt.Sprintf("%s %d", id, tl.rules[id])
		}
		t.Logf("%-9s %4d messages: %4d suppressed, %4d would get an acknowledgement (suppressed by: %s)",
			c, tl.replied+tl.suppressed, tl.suppressed, tl.replied, strings.Join(by, ", "))
	}
	if tl := tallies["spam"]; tl != nil && tl.replied > 0 {
		t.Logf("spam: %d of %d would get an acknowledgement here; in production SES's spam verdict and DMARC stop them, and the corpus has neither",
			tl.replied, tl.replied+tl.suppressed)
	}
}

// corpusEnvelope stands in for the SMTP MAIL FROM the corpus files do not record: Return-Path
// when there is one ("<>" is the null sender), else the first From address.
func corpusEnvelope(m *mail.Message) string {
	if rp, ok := m.ReturnPath(); ok {
		return rp
	}
	if len(m.From) > 0 {
		return m.From[0].Address
	}
	return ""
}

func TestAutomaticIsMachineMailOnly(t *testing.T) {
	person := personalMessage(KindAcknowledgement)
	if v := Automatic(person); !v.Reply {
		t.Fatalf("a person's message is automatic: %+v", v)
	}
	// Spam and a message not addressed to the mailbox are reasons not to reply, not signs of a
	// machine.
	spammy := verdicts(func(v *routing.Verdicts) { v.Spam = "FAIL" })
	if v := Automatic(spammy); !v.Reply {
		t.Errorf("a spam verdict made the message automatic: %+v", v)
	}
	for _, field := range [][2]string{{"Auto-Submitted", "auto-replied"}, {"Precedence", "bulk"}, {"List-Id", "<a.lists.test>"}} {
		in := personalMessage(KindAcknowledgement)
		addFields(&in, field[0], field[1])
		if v := Automatic(in); v.Reply {
			t.Errorf("%s: %s is not automatic", field[0], field[1])
		}
	}
	bounce := personalMessage(KindAcknowledgement)
	bounce.EnvelopeFrom = ""
	if v := Automatic(bounce); v.Reply || v.Rule != "null-sender" {
		t.Errorf("a bounce: %+v", v)
	}
}
