package seslocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/emersion/go-message/mail"
)

// testClock ticks one second per call so that every message has its own time.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Now == nil {
		o.Now = testClock()
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Start(t.Context(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClient is the SDK client as Mailroom builds it, pointed at the local endpoint.
func newClient(s *Server, optFns ...func(*sesv2.Options)) *sesv2.Client {
	return sesv2.New(sesv2.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.URL()),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
		RetryMaxAttempts: 1,
	}, optFns...)
}

func rawInput(raw string) *sesv2.SendEmailInput {
	return &sesv2.SendEmailInput{Content: &types.EmailContent{Raw: &types.RawMessage{Data: []byte(raw)}}}
}

func send(t *testing.T, c *sesv2.Client, in *sesv2.SendEmailInput) string {
	t.Helper()
	out, err := c.SendEmail(context.Background(), in)
	if err != nil {
		t.Fatalf("SendEmail: %v", err)
	}
	return aws.ToString(out.MessageId)
}

func TestStartBindsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::1]:0"} {
		if s, err := Start(t.Context(), Options{Addr: addr, Logger: quietLogger()}); err == nil {
			s.Close()
			t.Errorf("Start(Addr %q) succeeded, want refusal", addr)
		}
	}
	s := startServer(t, Options{Addr: "localhost:0"})
	if got := s.URL(); !strings.HasPrefix(got, "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want http://127.0.0.1:PORT", got)
	}
}

func TestRawSendKeepsRequestBytesAndSendsSESMessageID(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		dest     *types.Destination
		wantSent string // with MSGID for the SES Message-ID header
		wantRcpt []string
		wantSubj string
		wantCfg  string
	}{
		{
			name: "sender Message-ID replaced in place, Bcc dropped",
			raw: "From: Sales <sales@example.com>\r\nTo: ann@example.org\r\nBcc: audit@example.com\r\n" +
				"Message-ID: <local-123@mailroom.test>\r\nDate: Fri, 14 Mar 2025 09:00:00 +0000\r\n" +
				"Subject: =?UTF-8?B?5L2g5aW9?=\r\n\r\nHello\r\n",
			wantSent: "From: Sales <sales@example.com>\r\nTo: ann@example.org\r\n" +
				"Message-ID: MSGID\r\nDate: Fri, 14 Mar 2025 09:00:00 +0000\r\n" +
				"Subject: =?UTF-8?B?5L2g5aW9?=\r\n\r\nHello\r\n",
			wantRcpt: []string{"ann@example.org", "audit@example.com"},
			wantSubj: "你好",
		},
		{
			name: "Message-ID and Date added, LF endings and folding kept",
			raw: "From: a@example.com\nTo: b@example.org,\n\tc@example.org\nSubject: folded\n over two lines\n\n" +
				"body with trailing spaces   \n\n\n",
			wantSent: "From: a@example.com\nTo: b@example.org,\n\tc@example.org\nSubject: folded\n over two lines\n" +
				"Message-ID: MSGID\nDate: Fri, 14 Mar 2025 09:26:54 +0000\n\n" +
				"body with trailing spaces   \n\n\n",
			wantRcpt: []string{"b@example.org", "c@example.org"},
			wantSubj: "folded over two lines",
		},
		{
			name: "Destination wins over headers, SES control headers stripped",
			raw: "From: a@example.com\r\nTo: shown@example.org\r\nX-SES-CONFIGURATION-SET: outbound\r\n" +
				"Subject: hi\r\nDate: Fri, 14 Mar 2025 09:00:00 +0000\r\n\r\n--\r\n",
			dest: &types.Destination{BccAddresses: []string{"hidden@example.net"}},
			wantSent: "From: a@example.com\r\nTo: shown@example.org\r\nSubject: hi\r\n" +
				"Date: Fri, 14 Mar 2025 09:00:00 +0000\r\nMessage-ID: MSGID\r\n\r\n--\r\n",
			wantRcpt: []string{"hidden@example.net"},
			wantSubj: "hi",
			wantCfg:  "outbound",
		},
		{
			name:     "empty Destination falls back to headers",
			raw:      "From: a@example.com\r\nCc: Team <team@example.org>\r\nMessage-ID: <x@y>\r\nDate: d\r\n\r\n",
			dest:     &types.Destination{},
			wantSent: "From: a@example.com\r\nCc: Team <team@example.org>\r\nMessage-ID: MSGID\r\nDate: d\r\n\r\n",
			wantRcpt: []string{"team@example.org"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{})
			in := rawInput(tt.raw)
			in.Destination = tt.dest
			id := send(t, newClient(s), in)

			req, err := s.Request(id)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(req); got != tt.raw {
				t.Errorf("request bytes changed:\ngot  %q\nwant %q", got, tt.raw)
			}
			sent, err := s.Sent(id)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(tt.wantSent, "MSGID", "<"+id+"@email.amazonses.com>", 1)
			if got := string(sent); got != want {
				t.Errorf("as sent:\ngot  %q\nwant %q", got, want)
			}
			m, err := s.Message(id)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(m.Recipients, " "); got != strings.Join(tt.wantRcpt, " ") {
				t.Errorf("Recipients = %q, want %q", got, tt.wantRcpt)
			}
			if m.Subject != tt.wantSubj || m.ConfigurationSetName != tt.wantCfg {
				t.Errorf("Subject, ConfigurationSetName = %q, %q, want %q, %q", m.Subject, m.ConfigurationSetName, tt.wantSubj, tt.wantCfg)
			}
			if m.Kind != KindRaw || m.RequestContentType != "message/rfc822" || m.Size != len(sent) {
				t.Errorf("Kind, RequestContentType, Size = %q, %q, %d", m.Kind, m.RequestContentType, m.Size)
			}
		})
	}
}

func TestMessageIDShapeAndRegion(t *testing.T) {
	tests := []struct {
		region, wantDomain string
	}{
		{"us-east-1", "@email.amazonses.com>"},
		{"eu-west-1", "@eu-west-1.amazonses.com>"},
		{"ap-southeast-1", "@ap-southeast-1.amazonses.com>"},
	}
	for _, tt := range tests {
		s := startServer(t, Options{Region: tt.region})
		id := send(t, newClient(s), rawInput("From: a@example.com\r\nTo: b@example.org\r\n\r\nx"))
		// 0100 + 12 hex ms, a UUID, -000000: 16+1+36+1+6 characters.
		if len(id) != 60 || !strings.HasPrefix(id, "0100") || !strings.HasSuffix(id, "-000000") {
			t.Errorf("%s: MessageId %q is not shaped like SES's", tt.region, id)
		}
		m, _ := s.Message(id)
		if got, want := m.MessageIdHeader, "<"+id+tt.wantDomain; got != want {
			t.Errorf("%s: Message-ID header %q, want %q", tt.region, got, want)
		}
	}
}

func TestMetadataKept(t *testing.T) {
	s := startServer(t, Options{})
	id := send(t, newClient(s), &sesv2.SendEmailInput{
		FromEmailAddress:               aws.String("noreply@example.com"),
		Destination:                    &types.Destination{ToAddresses: []string{"ann@example.org"}},
		ReplyToAddresses:               []string{"support@example.com"},
		ConfigurationSetName:           aws.String("mailroom-outbound"),
		EmailTags:                      []types.MessageTag{{Name: aws.String("flow"), Value: aws.String("autoreply")}},
		ListManagementOptions:          &types.ListManagementOptions{ContactListName: aws.String("news"), TopicName: aws.String("weekly")},
		FeedbackForwardingEmailAddress: aws.String("bounces@example.com"),
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String("Out of office")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String("Back Monday.")}},
		}},
	})
	got, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{
		MessageId: id, Timestamp: time.Date(2025, 3, 14, 9, 26, 54, 0, time.UTC), Region: "us-east-1",
		Kind: KindSimple, From: "noreply@example.com", FromEmailAddress: "noreply@example.com",
		Destination: &Destination{ToAddresses: []string{"ann@example.org"}},
		Recipients:  []string{"ann@example.org"}, Subject: "Out of office",
		ReplyToAddresses:               []string{"support@example.com"},
		ConfigurationSetName:           "mailroom-outbound",
		EmailTags:                      []MessageTag{{"flow", "autoreply"}},
		ListManagementOptions:          &ListManagementOptions{"news", "weekly"},
		FeedbackForwardingEmailAddress: "bounces@example.com",
		MessageIdHeader:                "<" + id + "@email.amazonses.com>",
		Size:                           got.Size,
		RequestContentType:             "application/json",
	}
	if !equalJSON(t, got, want) {
		t.Errorf("Message:\ngot  %+v\nwant %+v", got, want)
	}
	req, _ := s.Request(id)
	if !bytes.Contains(req, []byte(`"ConfigurationSetName":"mailroom-outbound"`)) {
		t.Errorf("request bytes are not the SendEmail body: %s", req)
	}
}

func TestSimpleMultilingualAlternative(t *testing.T) {
	tests := []struct {
		name, subject, text, html, charset string
	}{
		{"Simplified Chinese", "您的邮件已收到 — 我们将在 4 个工作小时内回复", "您好，\n我们已收到您的邮件。\n", "<p>您好，</p><p>我们已收到您的邮件。</p>", "UTF-8"},
		{"Vietnamese", "Chúng tôi đã nhận được thư của bạn", "Xin chào,\nchúng tôi sẽ trả lời trong vòng 4 giờ làm việc.\n", "<p>Xin chào,</p><p>chúng tôi sẽ trả lời trong vòng 4 giờ làm việc.</p>", "UTF-8"},
		{"Latin-1 charset", "Réponse automatique : absent", "Je suis absent jusqu'à lundi.\n", "<p>Je suis absent jusqu'à lundi.</p>", "ISO-8859-1"},
		{"long ASCII subject folds", strings.TrimSpace(strings.Repeat("acknowledgement ", 10)), "plain\n", "<b>html</b>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{})
			var cs *string
			if tt.charset != "" {
				cs = aws.String(tt.charset)
			}
			id := send(t, newClient(s), &sesv2.SendEmailInput{
				FromEmailAddress: aws.String("Mailroom <ack@example.com>"),
				Destination: &types.Destination{
					ToAddresses:  []string{"khach@example.vn"},
					CcAddresses:  []string{"team@example.com"},
					BccAddresses: []string{"audit@example.com"},
				},
				ReplyToAddresses: []string{"support@example.com"},
				Content: &types.EmailContent{Simple: &types.Message{
					Subject: &types.Content{Data: aws.String(tt.subject), Charset: cs},
					Body: &types.Body{
						Text: &types.Content{Data: aws.String(tt.text), Charset: cs},
						Html: &types.Content{Data: aws.String(tt.html), Charset: cs},
					},
				}},
			})
			sent, _ := s.Sent(id)
			checkWireFormat(t, sent)

			mr, err := mail.CreateReader(bytes.NewReader(sent))
			if err != nil {
				t.Fatalf("parse as sent: %v", err)
			}
			gotSubject, err := mr.Header.Subject()
			if err != nil || gotSubject != tt.subject {
				t.Errorf("Subject = %q (%v), want %q", gotSubject, err, tt.subject)
			}
			if ct, _, _ := mr.Header.ContentType(); ct != "multipart/alternative" {
				t.Errorf("Content-Type = %q, want multipart/alternative", ct)
			}
			if got, want := mr.Header.Get("Message-Id"), "<"+id+"@email.amazonses.com>"; got != want {
				t.Errorf("Message-ID = %q, want %q", got, want)
			}
			if mr.Header.Has("Bcc") || bytes.Contains(sent, []byte("audit@example.com")) {
				t.Errorf("Bcc recipient visible in the message as sent")
			}
			for key, want := range map[string]string{"To": "khach@example.vn", "Cc": "team@example.com", "Reply-To": "support@example.com"} {
				addrs, err := mr.Header.AddressList(key)
				if err != nil || len(addrs) != 1 || addrs[0].Address != want {
					t.Errorf("%s = %v (%v), want %s", key, addrs, err, want)
				}
			}
			gotParts := map[string]string{}
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("NextPart: %v", err)
				}
				ct, params, _ := p.Header.(*mail.InlineHeader).ContentType()
				wantCS := tt.charset
				if wantCS == "" {
					wantCS = "UTF-8"
				}
				if !strings.EqualFold(params["charset"], wantCS) {
					t.Errorf("%s charset = %q, want %q", ct, params["charset"], wantCS)
				}
				b, _ := io.ReadAll(p.Body)
				gotParts[ct] = string(b)
			}
			wantParts := map[string]string{"text/plain": strings.ReplaceAll(tt.text, "\n", "\r\n"), "text/html": tt.html}
			if !equalJSON(t, gotParts, wantParts) {
				t.Errorf("decoded parts:\ngot  %q\nwant %q", gotParts, wantParts)
			}
			m, _ := s.Message(id)
			if got, want := strings.Join(m.Recipients, " "), "khach@example.vn team@example.com audit@example.com"; got != want {
				t.Errorf("Recipients = %q, want %q", got, want)
			}
		})
	}
}

// checkWireFormat holds generated mail to SMTP's rules: CRLF only, 7-bit, lines of at most 998.
func checkWireFormat(t *testing.T, msg []byte) {
	t.Helper()
	for i, line := range bytes.Split(msg, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes long", i+1, len(line))
		}
		if !isASCII(string(line)) {
			t.Errorf("line %d is not 7-bit: %q", i+1, line)
		}
	}
	header, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for i, line := range bytes.Split(header, []byte("\r\n")) {
		if len(line) > 78 && bytes.Contains(line, []byte(" ")) && !bytes.HasPrefix(line, []byte("Message-ID:")) {
			t.Errorf("header line %d not folded: %q", i+1, line)
		}
	}
}

func TestSimpleAttachments(t *testing.T) {
	s := startServer(t, Options{})
	pdf := []byte("%PDF-1.4\n\x00\x01\x02binary\r\n")
	id := send(t, newClient(s), &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("reports@example.com"),
		Destination:      &types.Destination{ToAddresses: []string{"ann@example.org"}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String("SLA report")},
			Body: &types.Body{
				Text: &types.Content{Data: aws.String("See attached.")},
				Html: &types.Content{Data: aws.String(`<img src="cid:logo">See attached.`)},
			},
			Headers: []types.MessageHeader{{Name: aws.String("Auto-Submitted"), Value: aws.String("auto-generated")}},
			Attachments: []types.Attachment{
				{FileName: aws.String("báo cáo.pdf"), RawContent: pdf, ContentType: aws.String("application/pdf")},
				{FileName: aws.String("logo.png"), RawContent: []byte("\x89PNG"), ContentDisposition: types.AttachmentContentDispositionInline, ContentId: aws.String("logo")},
				{FileName: aws.String("notes.txt"), RawContent: []byte("a=b\nline two\n"), ContentTransferEncoding: types.AttachmentContentTransferEncodingQuotedPrintable},
			},
		}},
	})
	sent, _ := s.Sent(id)
	checkWireFormat(t, sent)
	mr, err := mail.CreateReader(bytes.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	if got := mr.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if ct, _, _ := mr.Header.ContentType(); ct != "multipart/mixed" {
		t.Errorf("top Content-Type = %q, want multipart/mixed", ct)
	}
	type got struct{ kind, name, body string }
	var parts []got
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			parts = append(parts, got{"attachment", name, string(b)})
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			parts = append(parts, got{"inline", ct, string(b)})
		}
	}
	want := []got{
		{"inline", "text/plain", "See attached."},
		{"inline", "text/html", `<img src="cid:logo">See attached.`},
		{"inline", "image/png", "\x89PNG"},
		{"attachment", "báo cáo.pdf", string(pdf)},
		{"attachment", "notes.txt", "a=b\nline two\n"},
	}
	if !equalJSON(t, parts, want) {
		t.Errorf("parts:\ngot  %q\nwant %q", parts, want)
	}
}

// corruptBody lets a test send what the SDK would never produce, still through the SDK's own
// signing and error handling.
func corruptBody(edit func([]byte) []byte) func(*sesv2.Options) {
	return func(o *sesv2.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Build.Add(middleware.BuildMiddlewareFunc("corruptBody",
				func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
					req := in.Request.(*smithyhttp.Request)
					b, err := io.ReadAll(req.GetStream())
					if err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, err
					}
					b = edit(b)
					if req, err = req.SetStream(bytes.NewReader(b)); err != nil {
						return middleware.BuildOutput{}, middleware.Metadata{}, err
					}
					req.ContentLength = int64(len(b))
					in.Request = req
					return next.HandleBuild(ctx, in)
				}), middleware.After)
		})
	}
}

func TestValidationErrorsAreTyped(t *testing.T) {
	simple := func(edit func(*sesv2.SendEmailInput)) *sesv2.SendEmailInput {
		in := &sesv2.SendEmailInput{
			FromEmailAddress: aws.String("sender@example.com"),
			Destination:      &types.Destination{ToAddresses: []string{"ann@example.org"}},
			Content: &types.EmailContent{Simple: &types.Message{
				Subject: &types.Content{Data: aws.String("subject")},
				Body:    &types.Body{Text: &types.Content{Data: aws.String("body")}},
			}},
		}
		edit(in)
		return in
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@example.org", i)
	}
	var badRequest *types.BadRequestException
	var rejected *types.MessageRejected
	tests := []struct {
		name     string
		in       *sesv2.SendEmailInput
		opt      func(*sesv2.Options)
		wantType any
		wantMsg  string
	}{
		{"Simple without FromEmailAddress", simple(func(in *sesv2.SendEmailInput) { in.FromEmailAddress = nil }), nil, &badRequest, "FromEmailAddress is required"},
		{"Raw without From", rawInput("To: ann@example.org\r\n\r\nhi"), nil, &badRequest, "Missing required header 'From'"},
		{"Raw without recipients", rawInput("From: a@example.com\r\nSubject: x\r\n\r\nhi"), nil, &badRequest, "No recipients"},
		{"Simple without recipients", simple(func(in *sesv2.SendEmailInput) { in.Destination = &types.Destination{} }), nil, &badRequest, "No recipients"},
		{"51 recipients", simple(func(in *sesv2.SendEmailInput) { in.Destination = &types.Destination{BccAddresses: many} }), nil, &badRequest, "Recipient count exceeds 50"},
		{"51 recipients in Raw headers", rawInput("From: a@example.com\r\nTo: " + strings.Join(many, ", ") + "\r\n\r\nhi"), nil, &badRequest, "Recipient count exceeds 50"},
		{"over the size limit", rawInput("From: a@example.com\r\nTo: b@example.org\r\n\r\n" + strings.Repeat("x", 5000)), nil, &rejected, "Message length is more than 4096 bytes"},
		{"Simple over the size limit", simple(func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Body.Text.Data = aws.String(strings.Repeat("y", 5000))
		}), nil, &rejected, "Message length is more than 4096 bytes"},
		{"invalid base64", rawInput("From: a@example.com\r\nTo: b@example.org\r\n\r\nhi"), corruptBody(func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"Data":"`), []byte(`"Data":"!!`), 1)
		}), &badRequest, "not valid base64"},
		{"not JSON", rawInput("From: a@example.com\r\n\r\nhi"), corruptBody(func(b []byte) []byte { return b[:len(b)/2] }), &badRequest, "not valid SendEmail JSON"},
		{"Raw without header/body separator", rawInput("From: a@example.com\r\nTo: b@example.org"), nil, &rejected, "separated by a blank line"},
		{"Raw with an illegal header line", rawInput("From: a@example.com\r\nnot a header\r\n\r\nhi"), nil, &rejected, "Illegal header line"},
		{"CRLF injection in Subject", simple(func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Subject.Data = aws.String("hello\r\nBcc: victim@example.net")
		}), nil, &badRequest, "header injection"},
		{"bare LF in Subject", simple(func(in *sesv2.SendEmailInput) { in.Content.Simple.Subject.Data = aws.String("a\nb") }), nil, &badRequest, "header injection"},
		{"CR in FromEmailAddress", simple(func(in *sesv2.SendEmailInput) { in.FromEmailAddress = aws.String("a@example.com\rBcc: x@example.net") }), nil, &badRequest, "header injection"},
		{"LF in ReplyTo", simple(func(in *sesv2.SendEmailInput) { in.ReplyToAddresses = []string{"a@example.com\nX: y"} }), nil, &badRequest, "header injection"},
		{"LF in custom header", simple(func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("X-Flow"), Value: aws.String("a\r\nBcc: x@example.net")}}
		}), nil, &badRequest, "header injection"},
		{"custom header SES sets itself", simple(func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("From"), Value: aws.String("x@example.net")}}
		}), nil, &badRequest, "set by SES"},
		{"non-ASCII local part", simple(func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"nguyễn@example.vn"} }), nil, &badRequest, "Local address contains non-ASCII"},
		{"non-ASCII local part in Raw To", rawInput("From: a@example.com\r\nTo: 张伟@example.cn\r\n\r\nhi"), nil, &badRequest, "Local address contains non-ASCII"},
		{"unencoded non-ASCII display name", simple(func(in *sesv2.SendEmailInput) {
			in.FromEmailAddress = aws.String("Phòng Kinh doanh <sales@example.vn>")
		}), nil, &badRequest, "RFC 2047"},
		{"IDN domain not Punycode", simple(func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"info@bücher.example"} }), nil, &badRequest, "Punycode"},
		{"address without domain", simple(func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"ann"} }), nil, &badRequest, "Missing final '@domain'"},
		{"Template not supported yet", &sesv2.SendEmailInput{
			FromEmailAddress: aws.String("a@example.com"),
			Destination:      &types.Destination{ToAddresses: []string{"b@example.org"}},
			Content:          &types.EmailContent{Template: &types.Template{TemplateName: aws.String("ack")}},
		}, nil, &badRequest, "Template content is not supported"},
		{"Raw and Simple together", func() *sesv2.SendEmailInput {
			in := simple(func(*sesv2.SendEmailInput) {})
			in.Content.Raw = &types.RawMessage{Data: []byte("From: a@example.com\r\n\r\nx")}
			return in
		}(), nil, &badRequest, "exactly one of Simple, Raw or Template"},
		{"unknown charset", simple(func(in *sesv2.SendEmailInput) { in.Content.Simple.Body.Text.Charset = aws.String("x-klingon") }), nil, &badRequest, "unsupported charset"},
		{"text the charset cannot hold", simple(func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Body.Text = &types.Content{Data: aws.String("你好"), Charset: aws.String("ISO-8859-1")}
		}), nil, &badRequest, "cannot be represented"},
		{"bad tag name", simple(func(in *sesv2.SendEmailInput) {
			in.EmailTags = []types.MessageTag{{Name: aws.String("has space"), Value: aws.String("v")}}
		}), nil, &badRequest, "Invalid EmailTags"},
	}
	s := startServer(t, Options{MaxMessageSize: 4096})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*sesv2.Options)
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			_, err := newClient(s, opts...).SendEmail(context.Background(), tt.in)
			if err == nil {
				t.Fatal("SendEmail succeeded, want an error")
			}
			if !errors.As(err, tt.wantType) {
				t.Fatalf("error %v (%T), want %T", err, errors.Unwrap(err), tt.wantType)
			}
			var api smithy.APIError
			errors.As(err, &api)
			if !strings.Contains(api.ErrorMessage(), tt.wantMsg) {
				t.Errorf("message %q, want it to contain %q", api.ErrorMessage(), tt.wantMsg)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages stored after refusals, want 0", n)
	}
}

func TestAPIRequiresSigV4(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(s, func(o *sesv2.Options) { o.Credentials = aws.AnonymousCredentials{} })
	_, err := c.SendEmail(context.Background(), rawInput("From: a@example.com\r\nTo: b@example.org\r\n\r\nx"))
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned SendEmail: %v, want MissingAuthenticationTokenException", err)
	}
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("status: %v, want 403", err)
	}

	// Other operations are signed too, and answered as unknown.
	_, err = newClient(s).GetAccount(context.Background(), &sesv2.GetAccountInput{})
	if !errors.As(err, &api) || api.ErrorCode() != "UnknownOperationException" {
		t.Errorf("GetAccount: %v, want UnknownOperationException", err)
	}
}

func TestMaildirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := testClock()
	s1 := startServer(t, Options{Dir: dir, Now: clock})
	c := newClient(s1)
	rawID := send(t, c, rawInput("From: a@example.com\r\nTo: b@example.org\r\nSubject: first\r\n\r\nraw body\r\n"))
	simpleID := send(t, c, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("a@example.com"),
		Destination:      &types.Destination{ToAddresses: []string{"c@example.org"}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String("second")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String("simple body")}},
		}},
	})
	before := s1.Messages()
	sentBefore := map[string][]byte{}
	reqBefore := map[string][]byte{}
	for _, id := range []string{rawID, simpleID} {
		sentBefore[id], _ = s1.Sent(id)
		reqBefore[id], _ = s1.Request(id)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := startServer(t, Options{Dir: dir, Now: clock})
	after := s2.Messages()
	if !equalJSON(t, after, before) {
		t.Errorf("messages after restart:\ngot  %+v\nwant %+v", after, before)
	}
	if len(after) != 2 || after[0].MessageId != simpleID {
		t.Errorf("order after restart: %v, want newest (%s) first", after, simpleID)
	}
	for _, id := range []string{rawID, simpleID} {
		if got, _ := s2.Sent(id); !bytes.Equal(got, sentBefore[id]) {
			t.Errorf("%s: sent bytes differ after restart", id)
		}
		if got, _ := s2.Request(id); !bytes.Equal(got, reqBefore[id]) {
			t.Errorf("%s: request bytes differ after restart", id)
		}
	}
	// A mail client pointed at Dir moves what it has shown to cur/ and flags it.
	if err := os.Rename(filepath.Join(dir, "new", rawID+".eml"), filepath.Join(dir, "cur", rawID+".eml:2,S")); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Sent(rawID); err != nil || !bytes.Equal(got, sentBefore[rawID]) {
		t.Errorf("Sent after the message moved to cur/: %v", err)
	}
	// A third send after restart lands on top.
	third := send(t, newClient(s2), rawInput("From: a@example.com\r\nTo: b@example.org\r\n\r\nx"))
	if got := s2.Messages()[0].MessageId; got != third {
		t.Errorf("newest = %s, want %s", got, third)
	}
	if err := s2.Reset(); err != nil {
		t.Fatal(err)
	}
	s3 := startServer(t, Options{Dir: dir})
	if n := len(s3.Messages()); n != 0 {
		t.Errorf("%d messages after Reset and restart, want 0", n)
	}
}

func TestConcurrentSends(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := startServer(t, Options{Dir: dir})
		c := newClient(s)
		const n = 40
		ids := make(chan string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var in *sesv2.SendEmailInput
				if i%2 == 0 {
					in = rawInput("From: a@example.com\r\nTo: b@example.org\r\nSubject: raw\r\n\r\nx")
				} else {
					in = &sesv2.SendEmailInput{
						FromEmailAddress: aws.String("a@example.com"),
						Destination:      &types.Destination{ToAddresses: []string{"b@example.org"}},
						Content: &types.EmailContent{Simple: &types.Message{
							Subject: &types.Content{Data: aws.String("simple")},
							Body:    &types.Body{Text: &types.Content{Data: aws.String("x")}},
						}},
					}
				}
				out, err := c.SendEmail(context.Background(), in)
				if err != nil {
					t.Errorf("SendEmail: %v", err)
					return
				}
				ids <- aws.ToString(out.MessageId)
			})
			wg.Go(func() { // readers alongside writers
				for _, m := range s.Messages() {
					s.Sent(m.MessageId)
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			if seen[id] {
				t.Errorf("duplicate MessageId %s", id)
			}
			seen[id] = true
			if _, err := s.Sent(id); err != nil {
				t.Errorf("Sent(%s): %v", id, err)
			}
		}
		if got := len(s.Messages()); got != n {
			t.Errorf("dir %q: %d messages stored, want %d", dir, got, n)
		}
	}
}
