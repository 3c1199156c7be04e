package compose

import (
	"bytes"
	"github.com/mailroom/mailroom/internal/golden"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

var (
	now  = time.Date(2025, 3, 4, 9, 15, 30, 0, time.UTC)
	kl   = time.FixedZone("+08", 8*3600)
	gen  = Generated{Now: func() time.Time { return now }, NewID: func() string { return "0195b3c4-7d2e-7f00-9c1a-2b3c4d5e6f70" }, Domain: "example.com"}
	ana  = mail.Address{Name: "Ana Lima", Address: "ana@gmail.com"}
	sale = mail.Address{Name: "Sales", Address: "sales@example.com"}
)

func originalHeader() mail.Header {
	return mail.Header{
		{Name: "Return-Path", Value: "<ana@gmail.com>"},
		{Name: "Received", Value: "from mail-wr1-f49.google.com (mail-wr1-f49.google.com [209.85.221.49]) by inbound-smtp.eu-west-1.amazonaws.com with SMTP id 4o2l6f0d3n9k5q for sales@example.com; Tue, 04 Mar 2025 09:15:02 +0000 (UTC)"},
		{Name: "X-SES-Spam-Verdict", Value: "PASS"},
		{Name: "From", Value: "Ana Lima <ana@gmail.com>"},
		{Name: "To", Value: "sales@example.com"},
		{Name: "Subject", Value: "Quarterly figures"},
		{Name: "Date", Value: "Tue, 4 Mar 2025 10:15:00 +0100"},
		{Name: "Message-ID", Value: "<CAF=abc123@mail.gmail.com>"},
	}
}

func bounce() BounceOptions {
	return BounceOptions{
		Generated: gen,
		To:        "ana@gmail.com",
		Recipients: []BounceRecipient{
			{Address: "sales@example.com", Status: "5.7.1", Reason: "Only members of Sales may post to sales@example.com."},
			{Address: "board@example.com", Status: "5.1.1", Reason: "No such mailbox or group."},
		},
		Subject:   "Quarterly figures",
		MessageID: "CAF=abc123@mail.gmail.com",
		Header:    originalHeader(),
		Arrived:   now.Add(-30 * time.Second),
	}
}

func oversize() OversizeOptions {
	return OversizeOptions{
		Generated: gen, Via: sale, From: ana, Subject: "Site photos (all of them)", MessageID: "photos-1@mail.gmail.com",
		Size: 38_500_000, Link: "https://files.example.com/o/7f3a9c?X-Amz-Signature=0a1b2c3d4e5f&X-Amz-Expires=604800",
		Expires: now.Add(7 * 24 * time.Hour),
	}
}

func oversizeSender() OversizeSenderOptions {
	return OversizeSenderOptions{
		Generated: gen, Via: sale, To: ana, Subject: "Site photos (all of them)", MessageID: "photos-1@mail.gmail.com",
		Size: 38_500_000, Recipients: 12, Expires: now.Add(7 * 24 * time.Hour),
	}
}

func moderation() ModerationOptions {
	g := gen
	g.Zone = kl
	return ModerationOptions{
		Generated: g, Group: mail.Address{Name: "Board", Address: "board@example.com"},
		Moderators: []string{"chair@example.com", "secretary@example.com"},
		From:       ana, Subject: "Proposal: new office", Size: 2_400_000,
		Attachments: []string{"proposal.pdf", "floor plan (v2).png"},
		Received:    now, Expires: now.Add(72 * time.Hour),
		Approve: "https://admin.example.com/moderation/h-81f2/approve",
		Reject:  "https://admin.example.com/moderation/h-81f2/reject",
	}
}

func rejection() RejectionOptions {
	return RejectionOptions{
		Generated: gen, Group: mail.Address{Name: "Board", Address: "board@example.com"}, To: ana,
		Subject: "Proposal: new office", MessageID: "proposal-1@mail.gmail.com",
		Reason: "No moderator approved it before the hold ended on Fri, 7 Mar 2025 09:15 UTC.",
	}
}

func escalation(breach bool) EscalationOptions {
	g := gen
	g.Zone = kl
	o := EscalationOptions{
		Generated: g, Queue: mail.Address{Name: "Support", Address: "support@example.com"},
		To: []string{"lead@example.com", "manager@example.com"}, Breach: breach, Token: "[#C7K2QX9PA]",
		Customer: "bo@client.example", Subject: "Invoice 2026-118 is wrong", Policy: "Standard support",
		Target: "first response", Opened: now.Add(-30 * time.Hour), Due: now, Waited: 6*time.Hour + 30*time.Minute,
		Link: "https://admin.example.com/conversations/C7K2QX9PA",
	}
	if breach {
		o.Waited, o.Holding = 8*time.Hour, now.Add(24*time.Hour)
	}
	return o
}

var kinds = []struct {
	name  string
	write func(*bytes.Buffer) error
	auto  string
}{
	{"bounce", func(b *bytes.Buffer) error { return Bounce(b, bounce()) }, "auto-replied"},
	{"oversize", func(b *bytes.Buffer) error { return OversizeNotice(b, oversize()) }, "auto-generated"},
	{"oversize-sender", func(b *bytes.Buffer) error { return OversizeSenderNotice(b, oversizeSender()) }, "auto-replied"},
	{"moderation-request", func(b *bytes.Buffer) error { return ModerationRequest(b, moderation()) }, "auto-generated"},
	{"moderation-rejected", func(b *bytes.Buffer) error { return ModerationRejected(b, rejection()) }, "auto-replied"},
	{"sla-warning", func(b *bytes.Buffer) error { return Escalation(b, escalation(false)) }, "auto-generated"},
	{"sla-breach", func(b *bytes.Buffer) error { return Escalation(b, escalation(true)) }, "auto-generated"},
	{"oversize-non-ascii", func(b *bytes.Buffer) error {
		o := oversize()
		o.From = mail.Address{Name: "张伟", Address: "zhang.wei@example.cn"}
		o.Via = mail.Address{Name: "Équipe Ventes", Address: "ventes@example.com"}
		o.Subject = "现场照片 — all of them"
		return OversizeNotice(b, o)
	}, "auto-generated"},
}

func TestGeneratedGolden(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			var dst bytes.Buffer
			if err := k.write(&dst); err != nil {
				t.Fatal(err)
			}
			out := dst.Bytes()
			checkWire(t, out)
			m := checkParses(t, out, true)
			h := m.Header
			for _, name := range []string{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Auto-Submitted"} {
				if len(h.Values(name)) != 1 {
					t.Errorf("%d %s fields, want 1", len(h.Values(name)), name)
				}
			}
			if got := h.Get("Auto-Submitted"); got != k.auto {
				t.Errorf("Auto-Submitted = %q, want %q", got, k.auto)
			}
			if m.MessageID != "0195b3c4-7d2e-7f00-9c1a-2b3c4d5e6f70@example.com" {
				t.Errorf("Message-ID = %q", m.MessageID)
			}
			for _, line := range strings.Split(string(out), "\r\n") {
				if len(line) > 78 && !strings.HasPrefix(line, "Received:") {
					t.Errorf("line of %d characters: %q", len(line), line)
				}
			}
			golden.Check(t, k.name, out)
		})
	}
}

// TestBounceStructure reads the bounce as a mail client would.
func TestBounceStructure(t *testing.T) {
	var dst bytes.Buffer
	if err := Bounce(&dst, bounce()); err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(&dst)
	if err != nil {
		t.Fatal(err)
	}
	typ, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || typ != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if got := msg.Header.Get("In-Reply-To"); got != "<CAF=abc123@mail.gmail.com>" {
		t.Errorf("In-Reply-To = %q", got)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var report, headers, text string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p) // multipart decodes quoted-printable
		types = append(types, p.Header.Get("Content-Type"))
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			text = string(body)
		case p.Header.Get("Content-Type") == "message/delivery-status":
			report = string(body)
		case p.Header.Get("Content-Type") == "text/rfc822-headers":
			headers = string(body)
		}
	}
	if want := []string{"text/plain; charset=utf-8", "message/delivery-status", "text/rfc822-headers"}; strings.Join(types, "|") != strings.Join(want, "|") {
		t.Errorf("parts %q, want %q", types, want)
	}
	for _, want := range []string{"Reporting-MTA: dns; example.com", "Final-Recipient: rfc822; sales@example.com", "Action: failed", "Status: 5.7.1", "Diagnostic-Code: smtp; 550 5.7.1 Only members of Sales", "Final-Recipient: rfc822; board@example.com"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(text, "Only members of Sales may post to sales@example.com.") {
		t.Errorf("text lacks the reason:\n%s", text)
	}
	if !strings.Contains(headers, "Message-ID: <CAF=abc123@mail.gmail.com>") || strings.Contains(headers, "X-SES-") {
		t.Errorf("returned header:\n%s", headers)
	}
}

func TestBounceHeaderBounded(t *testing.T) {
	b := bounce()
	for i := 0; i < 5000; i++ {
		b.Header = append(b.Header, mail.Field{Name: "X-Filler", Value: strings.Repeat("f", 60)})
	}
	b.Header = append(b.Header, mail.Field{Name: "X-Unfoldable", Value: strings.Repeat("u", 2000)})
	var dst bytes.Buffer
	if err := Bounce(&dst, b); err != nil {
		t.Fatal(err)
	}
	if dst.Len() > maxReturnedHeader+8<<10 {
		t.Errorf("bounce of %d bytes: the returned header is not bounded", dst.Len())
	}
	checkWire(t, dst.Bytes())
	checkParses(t, dst.Bytes(), true)

	// A header with a line no folding can shorten, and 8-bit text, goes quoted-printable.
	b.Header = mail.Header{{Name: "Subject", Value: "café"}, {Name: "X-Unfoldable", Value: strings.Repeat("u", 2000)}}
	dst.Reset()
	if err := Bounce(&dst, b); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(dst.String(), "\r\n") {
		if len(line) > maxLine {
			t.Errorf("line of %d octets", len(line))
		}
	}
	if !strings.Contains(dst.String(), "Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: quoted-printable") {
		t.Errorf("8-bit returned header not encoded:\n%s", dst.String())
	}
}

// TestGeneratedInjection puts CR, LF and other controls in every text a caller passes.
func TestGeneratedInjection(t *testing.T) {
	evil := "x\r\nBcc: victim@evil.test\r\n\r\nforged body\u2028Bcc: y@evil.test\x00"
	evilAddr := mail.Address{Name: evil, Address: "ana@gmail.com"}
	writes := map[string]func(*bytes.Buffer) error{
		"bounce": func(b *bytes.Buffer) error {
			o := bounce()
			o.Subject = evil
			o.Recipients[0].Reason = evil
			o.Header = append(o.Header, mail.Field{Name: "X-Evil", Value: evil})
			return Bounce(b, o)
		},
		"oversize": func(b *bytes.Buffer) error {
			o := oversize()
			o.Subject, o.From, o.Via.Name = evil, evilAddr, evil
			return OversizeNotice(b, o)
		},
		"oversize-sender": func(b *bytes.Buffer) error {
			o := oversizeSender()
			o.Subject, o.To, o.Via.Name = evil, evilAddr, evil
			return OversizeSenderNotice(b, o)
		},
		"moderation-request": func(b *bytes.Buffer) error {
			o := moderation()
			o.Subject, o.From, o.Group.Name, o.Attachments = evil, evilAddr, evil, []string{evil}
			return ModerationRequest(b, o)
		},
		"moderation-rejected": func(b *bytes.Buffer) error {
			o := rejection()
			o.Subject, o.To, o.Group.Name, o.Reason = evil, evilAddr, evil, evil
			return ModerationRejected(b, o)
		},
		"sla": func(b *bytes.Buffer) error {
			o := escalation(true)
			o.Subject, o.Customer, o.Queue.Name, o.Token, o.Policy = evil, evil, evil, evil, evil
			return Escalation(b, o)
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			var dst bytes.Buffer
			if err := write(&dst); err != nil {
				t.Fatal(err)
			}
			checkWire(t, dst.Bytes())
			m := checkParses(t, dst.Bytes(), true)
			if v := m.Header.Values("Bcc"); len(v) > 0 {
				t.Errorf("Bcc injected: %q", v)
			}
			if bytes.Contains(dst.Bytes(), []byte("\r\nBcc:")) || bytes.Contains(dst.Bytes(), []byte("\r\n\r\nforged")) {
				t.Errorf("a line starts with injected text:\n%s", dst.String())
			}
		})
	}
}

func TestGeneratedErrors(t *testing.T) {
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		field string
	}{
		{"no clock", func(b *bytes.Buffer) error { o := bounce(); o.Now = nil; return Bounce(b, o) }, "Generated"},
		{"bad domain", func(b *bytes.Buffer) error { o := bounce(); o.Domain = "example.com\r\nBcc: x"; return Bounce(b, o) }, "Domain"},
		{"bad id", func(b *bytes.Buffer) error {
			o := bounce()
			o.NewID = func() string { return "a b" }
			return Bounce(b, o)
		}, "NewID"},
		{"bounce to injected", func(b *bytes.Buffer) error { o := bounce(); o.To = "a@b.test\r\nBcc: x@y.test"; return Bounce(b, o) }, "To"},
		{"bounce without recipients", func(b *bytes.Buffer) error { o := bounce(); o.Recipients = nil; return Bounce(b, o) }, "Recipients"},
		{"bounce transient status", func(b *bytes.Buffer) error { o := bounce(); o.Recipients[0].Status = "4.2.2"; return Bounce(b, o) }, "Recipients"},
		{"bounce bad recipient", func(b *bytes.Buffer) error {
			o := bounce()
			o.Recipients[0].Address = "x\r\nAction: delivered"
			return Bounce(b, o)
		}, "Recipients"},
		{"oversize javascript link", func(b *bytes.Buffer) error {
			o := oversize()
			o.Link = "javascript:alert(1)"
			return OversizeNotice(b, o)
		}, "Link"},
		{"oversize link with newline", func(b *bytes.Buffer) error {
			o := oversize()
			o.Link = "https://x.test/a\nBcc: y"
			return OversizeNotice(b, o)
		}, "Link"},
		{"oversize via", func(b *bytes.Buffer) error { o := oversize(); o.Via.Address = "sales"; return OversizeNotice(b, o) }, "Via"},
		{"moderation no moderators", func(b *bytes.Buffer) error { o := moderation(); o.Moderators = nil; return ModerationRequest(b, o) }, "Moderators"},
		{"moderation bad approve", func(b *bytes.Buffer) error {
			o := moderation()
			o.Approve = "/relative"
			return ModerationRequest(b, o)
		}, "Approve"},
		{"escalation without contacts", func(b *bytes.Buffer) error { o := escalation(false); o.To = nil; return Escalation(b, o) }, "To"},
		{"escalation injected contact", func(b *bytes.Buffer) error {
			o := escalation(false)
			o.To = []string{"a@b.test\r\nBcc: x@y.test"}
			return Escalation(b, o)
		}, "To"},
		{"rejected bad to", func(b *bytes.Buffer) error {
			o := rejection()
			o.To.Address = "nobody"
			return ModerationRejected(b, o)
		}, "To"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst bytes.Buffer
			err := tt.write(&dst)
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
				t.Errorf("err = %v, want Invalid on %s", err, tt.field)
			}
			if dst.Len() != 0 {
				t.Errorf("wrote %d bytes on error", dst.Len())
			}
		})
	}
}

func TestEncodeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Quarterly figures", "Quarterly figures"},
		{"  two\t\tspaces\r\n", "two spaces"},
		{"=?utf-8?q?looks_encoded?=", "=?utf-8?q?=3D=3Futf-8=3Fq=3Flooks=5Fencoded=3F=3D?="},
		{"Café", "=?utf-8?b?Q2Fmw6k=?="},
		{"Réunion de lundi", "=?utf-8?q?R=C3=A9union_de_lundi?="},
		{"报价单", "=?utf-8?b?5oql5Lu35Y2V?="},
	}
	for _, tt := range tests {
		got := encodeText(tt.in)
		if got != tt.want {
			t.Errorf("encodeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back := mail.DecodeHeader(got); back != clean(tt.in) {
			t.Errorf("encodeText(%q) reads back as %q", tt.in, back)
		}
	}
	// Long text: each word at most 75 bytes, whole characters in each.
	long := strings.Repeat("ação ", 40)
	for _, w := range strings.Fields(encodeText(long)) {
		if len(w) > 75 {
			t.Errorf("encoded word of %d bytes", len(w))
		}
	}
	if back := mail.DecodeHeader(encodeText(long)); back != strings.TrimSpace(long) {
		t.Errorf("long text reads back as %q", back)
	}
}

// FuzzNotice checks that no text a caller passes changes the structure of a generated message.
func FuzzNotice(f *testing.F) {
	f.Add("Quarterly figures", "Ana Lima", "Only members may post.")
	f.Add("x\r\nBcc: y@evil.test", "=?utf-8?q?a=0D=0Ab?=", "\u2028\x00\"<>,;:")
	f.Fuzz(func(t *testing.T, subject, name, reason string) {
		o := oversize()
		o.Subject, o.From.Name, o.Via.Name = subject, name, reason
		var dst bytes.Buffer
		if err := OversizeNotice(&dst, o); err != nil {
			t.Fatal(err)
		}
		checkWire(t, dst.Bytes())
		m, err := mail.Parse(bytes.NewReader(dst.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.From) != 1 || m.From[0].Address != "sales@example.com" || len(m.ReplyTo) != 1 || m.ReplyTo[0].Address != "ana@gmail.com" {
			t.Errorf("From %+v, Reply-To %+v", m.From, m.ReplyTo)
		}
		if m.Header.Get("Bcc") != "" || len(m.Header) != 11 {
			t.Errorf("header has %d fields: %+v", len(m.Header), m.Header)
		}
		r := rejection()
		r.Subject, r.To.Name, r.Reason = subject, name, reason
		dst.Reset()
		if err := ModerationRejected(&dst, r); err != nil {
			t.Fatal(err)
		}
		checkWire(t, dst.Bytes())
	})
}
