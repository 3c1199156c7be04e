package seslocal

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func ptr(s string) *string { return &s }

// Golden files show the exact bytes SES-style composition produces; review a diff before -update.
func TestComposeSimpleGolden(t *testing.T) {
	date := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	base := simpleParams{
		from:      "Mailroom <ack@example.com>",
		to:        []string{"khach@example.vn"},
		messageID: "<0100019590a1b2c3-5f0e2a94-7c1d-4e8b-9a3f-2b6c8d0e1f47-000000@email.amazonses.com>",
		date:      date,
	}
	tests := []struct {
		name string
		edit func(*simpleParams)
	}{
		{"text_ascii", func(p *simpleParams) {
			p.subject = textContent{Data: ptr("Out of office")}
			p.text = &textContent{Data: ptr("I am away until Monday.\nFor urgent matters call the desk.")}
		}},
		{"alternative_vietnamese", func(p *simpleParams) {
			p.cc = []string{"team@example.com"}
			p.replyTo = []string{"support@example.com"}
			p.subject = textContent{Data: ptr("Chúng tôi đã nhận được thư của bạn"), Charset: ptr("UTF-8")}
			p.text = &textContent{Data: ptr("Xin chào,\nchúng tôi sẽ trả lời trong vòng 4 giờ làm việc."), Charset: ptr("UTF-8")}
			p.html = &textContent{Data: ptr("<p>Xin chào,</p><p>chúng tôi sẽ trả lời trong vòng 4 giờ làm việc.</p>"), Charset: ptr("UTF-8")}
		}},
		{"alternative_chinese", func(p *simpleParams) {
			p.subject = textContent{Data: ptr("您的邮件已收到，我们将在四个工作小时内回复您的来信"), Charset: ptr("UTF-8")}
			p.text = &textContent{Data: ptr("您好，\n我们已收到您的邮件。"), Charset: ptr("UTF-8")}
			p.html = &textContent{Data: ptr("<p>您好，</p><p>我们已收到您的邮件。</p>"), Charset: ptr("UTF-8")}
		}},
		{"big5_traditional_chinese", func(p *simpleParams) {
			p.subject = textContent{Data: ptr("自動回覆：已收到您的來信"), Charset: ptr("Big5")}
			p.text = &textContent{Data: ptr("您好，我們已收到您的來信。"), Charset: ptr("Big5")}
		}},
		{"mixed_with_attachments", func(p *simpleParams) {
			p.subject = textContent{Data: ptr("SLA report")}
			p.text = &textContent{Data: ptr("See attached.")}
			p.html = &textContent{Data: ptr(`<img src="cid:logo"> See attached.`)}
			p.headers = []struct{ Name, Value string }{{"Auto-Submitted", "auto-generated"}}
			p.attachments = []attachment{
				{FileName: ptr("báo cáo.csv"), RawContent: "YSxiCjEsMgo=", ContentType: "text/csv"},
				{FileName: ptr("logo.png"), RawContent: "iVBORw==", ContentDisposition: "INLINE", ContentId: "logo"},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.edit(&p)
			got, aerr := composeSimple(p)
			if aerr != nil {
				t.Fatal(aerr)
			}
			checkWireFormat(t, got)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(got) != string(want) {
				t.Errorf("composeSimple differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func TestSplitRawRejects(t *testing.T) {
	tests := []struct {
		name, raw string
	}{
		{"no separator", "From: a@example.com\r\n"},
		{"no line ending at all", "From: a@example.com"},
		{"no header", "\r\nbody"},
		{"starts with continuation", " folded\r\nFrom: a@example.com\r\n\r\n"},
		{"line without colon", "From: a@example.com\r\nmbox From line\r\n\r\n"},
		{"space in name", "Bad Name: x\r\n\r\n"},
		{"empty name", ": x\r\n\r\n"},
	}
	for _, tt := range tests {
		if _, err := splitRaw([]byte(tt.raw)); err == nil {
			t.Errorf("%s: splitRaw(%q) accepted", tt.name, tt.raw)
		}
	}
}

func TestRawAsSentRewrites(t *testing.T) {
	rw := rawRewrite{messageID: "<id@email.amazonses.com>", date: "Fri, 14 Mar 2025 09:26:53 +0000", from: "ses@example.com"}
	tests := []struct {
		name, raw, want string
	}{
		{
			"folded Message-ID and two of them",
			"Message-ID:\r\n <a@x>\r\nFrom: a@example.com\r\nMessage-Id: <b@x>\r\nDate: d\r\n\r\nbody",
			"Message-ID: <id@email.amazonses.com>\r\nFrom: a@example.com\r\nDate: d\r\n\r\nbody",
		},
		{
			"folded Bcc and control headers removed, From added",
			"To: t@example.org\r\nBCC: x@example.org,\r\n y@example.org\r\nX-SES-MESSAGE-TAGS: a=b\r\nX-SES-SOURCE-ARN: arn\r\nDate: d\r\n\r\nbody",
			"To: t@example.org\r\nDate: d\r\nMessage-ID: <id@email.amazonses.com>\r\nFrom: ses@example.com\r\n\r\nbody",
		},
		{
			"body bytes after the first blank line untouched",
			"From: a@example.com\nDate: d\nMessage-ID: <m@x>\n\nBcc: not a header\r\n\r\nMessage-ID: <kept@x>\n",
			"From: a@example.com\nDate: d\nMessage-ID: <id@email.amazonses.com>\n\nBcc: not a header\r\n\r\nMessage-ID: <kept@x>\n",
		},
	}
	for _, tt := range tests {
		msg, err := splitRaw([]byte(tt.raw))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := string(msg.asSent(rw)); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
