package smtpingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/s3store"
)

// serve starts f's ingress on a free loopback port and returns its address.
func serve(t *testing.T, f *fixture) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.in.Serve(l) }()
	t.Cleanup(func() {
		f.in.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return l.Addr().String()
}

// numberedIDs gives each message its own id, so several can be received by one ingress.
func numberedIDs(c *Config) {
	var n atomic.Int64
	c.NewID = func() string { return fmt.Sprintf("msg%037d", n.Add(1)) }
}

// send delivers raw over SMTP with the standard library's client, stopping at the first error.
func send(addr, from string, to []string, raw string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("laptop.example.net"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestSMTPExtensions(t *testing.T) {
	addr := serve(t, newFixture(t, nil))
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("laptop.example.net"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ext   string
		ok    bool
		param string
	}{
		{"8BITMIME", true, ""},
		{"SIZE", true, "41943040"},
		{"SMTPUTF8", false, ""},
		{"PIPELINING", true, ""},
	}
	for _, tt := range tests {
		ok, param := c.Extension(tt.ext)
		if ok != tt.ok || param != tt.param {
			t.Errorf("EHLO %s = %v %q, want %v %q", tt.ext, ok, param, tt.ok, tt.param)
		}
	}
}

func TestSMTPDelivers(t *testing.T) {
	f := newFixture(t, nil)
	addr := serve(t, f)
	if err := send(addr, "jane@example.net", []string{"sales@example.com"}, sample); err != nil {
		t.Fatalf("send: %v", err)
	}
	stored, ok := f.objects.get("inbound/" + fixedID)
	if !ok {
		t.Fatal("nothing stored under inbound/<id>")
	}
	// The dot-stuffed line arrives unstuffed: the sender's message, exactly.
	if !bytes.HasSuffix(stored, []byte(sample)) {
		t.Errorf("stored message does not end with what was sent:\n%s", stored)
	}
	wantHead := "Return-Path: <jane@example.net>\r\n" +
		"Received: from laptop.example.net (localhost [127.0.0.1])\r\n" +
		" by inbound-smtp.us-east-1.amazonaws.com with SMTP id " + fixedID + "\r\n" +
		" for sales@example.com;\r\n" +
		" Mon, 02 Mar 2026 09:15:30 +0000 (UTC)\r\n" +
		"X-SES-Spam-Verdict: PASS\r\n" +
		"X-SES-Virus-Verdict: PASS\r\n"
	if !bytes.HasPrefix(stored, []byte(wantHead)) {
		t.Errorf("stored message starts:\n%s\nwant:\n%s", stored[:len(wantHead)], wantHead)
	}
	calls := f.handler.calls()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(calls))
	}
	mail := calls[0].Records[0].SES.Mail
	if mail.Source != "jane@example.net" || mail.MessageID != fixedID || mail.CommonHeaders.Subject != "Re: 询价 for the résumé files" {
		t.Errorf("event mail = %+v", mail)
	}
}

// The reply to the message names the id, so a person using swaks knows which object to open.
func TestSMTPReplyNamesMessageID(t *testing.T) {
	addr := serve(t, newFixture(t, nil))
	conn, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	steps := []struct {
		cmd  string
		code int
	}{
		{"", 220}, {"EHLO laptop.example.net", 250}, {"MAIL FROM:<>", 250},
		{"RCPT TO:<postmaster@example.com>", 250}, {"DATA", 354},
	}
	for _, s := range steps {
		if s.cmd != "" {
			conn.PrintfLine("%s", s.cmd)
		}
		if _, _, err := conn.ReadResponse(s.code); err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
	}
	conn.PrintfLine("Subject: bounce\r\n\r\nbody\r\n.")
	_, msg, err := conn.ReadResponse(250)
	if err != nil || !strings.Contains(msg, fixedID) {
		t.Errorf("reply to DATA = %q, %v; want 250 naming %s", msg, err, fixedID)
	}
}

func TestSMTPRecipients(t *testing.T) {
	tests := []struct {
		name     string
		from     string
		rcpt     string
		wantCode int
		mention  string
	}{
		{"served domain", "jane@example.net", "sales@example.com", 0, ""},
		{"subdomain", "jane@example.net", "support@eu.example.com", 0, ""},
		{"null sender", "", "sales@example.com", 0, ""},
		{"quoted local part", `"john doe"@example.net`, `"sales team"@example.com`, 0, ""},
		{"unknown domain", "jane@example.net", "sales@example.org", 550, "example.org"},
		{"look-alike domain", "jane@example.net", "sales@myexample.com", 550, "myexample.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			err := send(serve(t, f), tt.from, []string{tt.rcpt}, sample)
			if got := smtpCode(err); got != tt.wantCode || err != nil && !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("send: %v; want code %d mentioning %q", err, tt.wantCode, tt.mention)
			}
			wantObjects := 0
			if tt.wantCode == 0 {
				wantObjects = 1
			}
			if got := f.objects.len(); got != wantObjects {
				t.Errorf("%d objects stored, want %d", got, wantObjects)
			}
			if got := len(f.handler.calls()); got != wantObjects {
				t.Errorf("handler called %d times, want %d", got, wantObjects)
			}
		})
	}
}

func TestSMTPFiftyRecipients(t *testing.T) {
	f := newFixture(t, nil)
	c, err := smtp.Dial(serve(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("jane@example.net"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		if err := c.Rcpt(fmt.Sprintf("user%d@example.com", i)); err != nil {
			t.Fatalf("RCPT %d: %v", i, err)
		}
	}
	if err := c.Rcpt("user51@example.com"); smtpCode(err) != 452 {
		t.Fatalf("RCPT 51: %v, want 452", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(sample))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA for the first 50: %v", err)
	}
	calls := f.handler.calls()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(calls))
	}
	if got := len(calls[0].Records[0].SES.Mail.Destination); got != 50 {
		t.Errorf("destination lists %d recipients, want 50", got)
	}
	if got := len(calls[0].Records[0].SES.Receipt.Recipients); got != 50 {
		t.Errorf("receipt lists %d recipients, want 50", got)
	}
}

func TestSMTPTooLarge(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSize = 4096 })
	addr := serve(t, f)
	err := send(addr, "jane@example.net", []string{"sales@example.com"}, sample+strings.Repeat("0123456789abcdef\r\n", 300))
	if smtpCode(err) != 552 {
		t.Fatalf("send: %v, want 552", err)
	}
	if n := f.objects.len(); n != 0 {
		t.Errorf("%d objects stored, want none", n)
	}
	if n := len(f.handler.calls()); n != 0 {
		t.Errorf("handler called %d times, want never", n)
	}
	// The server still takes the next message.
	if err := send(addr, "jane@example.net", []string{"sales@example.com"}, sample); err != nil {
		t.Errorf("a message within the limit: %v", err)
	}
}

// SES has accepted the message once it is stored: a function that keeps failing does not turn
// into an SMTP error, and the raw object stays for replay.
func TestSMTPFunctionFails(t *testing.T) {
	f := newFixture(t, numberedIDs)
	f.handler.fail = func(int) error { return errors.New("table not found") }
	if err := send(serve(t, f), "jane@example.net", []string{"sales@example.com"}, sample); err != nil {
		t.Fatalf("send: %v, want 250", err)
	}
	if got := len(f.handler.calls()); got != 3 {
		t.Errorf("handler called %d times, want 3", got)
	}
	if _, ok := f.objects.get("inbound/msg0000000000000000000000000000000000001"); !ok {
		t.Error("raw object not kept")
	}
	log := f.logs.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "message_id=msg0000000000000000000000000000000000001") || !strings.Contains(log, "table not found") {
		t.Errorf("final failure not logged with the message id and cause:\n%s", log)
	}
}

// A store that fails is a temporary failure: the sender keeps the message and tries again.
func TestSMTPStoreFails(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Objects = failingObjects{} })
	err := send(serve(t, f), "jane@example.net", []string{"sales@example.com"}, sample)
	if smtpCode(err) != 451 {
		t.Fatalf("send: %v, want 451", err)
	}
	if n := len(f.handler.calls()); n != 0 {
		t.Errorf("handler called %d times, want never", n)
	}
}

type failingObjects struct{}

func (failingObjects) Put(context.Context, string, io.Reader, int64) (s3store.Object, error) {
	return s3store.Object{}, fault.New(fault.Transient, "s3store.Put", "connection refused")
}

func TestListenOnlyOnLoopback(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.in.ListenAndServe("0.0.0.0:0"); err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("ListenAndServe on every interface: %v, want refused", err)
	}
}
