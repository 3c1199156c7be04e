package seslocal

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

func equalJSON(t *testing.T, got, want any) bool {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(g, w)
}

func get(t *testing.T, method, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestPagesListAndEscape(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(s)
	evil := `<script>alert("x")</script> & 你好`
	id := send(t, c, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(`"Ops <b>" <ops@example.com>`),
		Destination:      &types.Destination{ToAddresses: []string{"ann@example.org"}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(evil)},
			Body: &types.Body{
				Text: &types.Content{Data: aws.String("Xin chào <img src=x onerror=alert(1)>")},
				Html: &types.Content{Data: aws.String("<p>html</p>")},
			},
		}},
	})
	older := send(t, c, rawInput("From: a@example.com\r\nTo: b@example.org\r\nSubject: plain one\r\n\r\nx"))

	status, hdr, body := get(t, "GET", s.URL()+"/")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", status, hdr.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 你好`,
		`href="/messages/` + id + `"`,
		"plain one",
		"ann@example.org",
		"&lt;b&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<b>") {
		t.Errorf("index has unescaped markup:\n%s", page)
	}
	if strings.Index(page, older) > strings.Index(page, id) {
		t.Errorf("index is not newest first")
	}

	status, _, body = get(t, "GET", s.URL()+"/messages/"+id)
	page = string(body)
	if status != 200 {
		t.Fatalf("GET /messages/%s = %d", id, status)
	}
	for _, want := range []string{
		"Xin chào &lt;img src=x onerror=alert(1)&gt;", // the text part, decoded and escaped
		"&lt;script&gt;",
		"<" + "th>Message-Id</th><td>&lt;" + id + "@email.amazonses.com&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("message page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img") {
		t.Errorf("message page has unescaped markup")
	}

	status, hdr, body = get(t, "GET", s.URL()+"/messages/"+id+".eml")
	sent, _ := s.Sent(id)
	if status != 200 || hdr.Get("Content-Type") != "message/rfc822" || !bytes.Equal(body, sent) {
		t.Errorf("GET .eml = %d %s, bytes equal %v", status, hdr.Get("Content-Type"), bytes.Equal(body, sent))
	}
	status, hdr, body = get(t, "GET", s.URL()+"/messages/"+older+"/request")
	if status != 200 || hdr.Get("Content-Type") != "message/rfc822" || string(body) != "From: a@example.com\r\nTo: b@example.org\r\nSubject: plain one\r\n\r\nx" {
		t.Errorf("GET request = %d %s %q", status, hdr.Get("Content-Type"), body)
	}
	if status, _, _ := get(t, "GET", s.URL()+"/messages/nope"); status != 404 {
		t.Errorf("unknown message page = %d, want 404", status)
	}
}

func TestJSONAPI(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(s)
	a := send(t, c, rawInput("From: a@example.com\r\nTo: Ann@Example.org\r\nBcc: audit@example.com\r\n\r\nx"))
	b := send(t, c, rawInput("From: a@example.com\r\nTo: bob@example.org\r\n\r\ny"))

	list := func(query string) []string {
		t.Helper()
		status, hdr, body := get(t, "GET", s.URL()+"/_mailroom/messages"+query)
		if status != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("list%s = %d %s", query, status, hdr.Get("Content-Type"))
		}
		var out struct{ Messages []Message }
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range out.Messages {
			ids = append(ids, m.MessageId)
		}
		return ids
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{b, a}},
		{"?to=ann@example.org", []string{a}},
		{"?to=audit@example.com", []string{a}},
		{"?to=bob@example.org", []string{b}},
		{"?to=nobody@example.org", nil},
	}
	for _, tt := range tests {
		if got := list(tt.query); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("list%s = %v, want %v", tt.query, got, tt.want)
		}
	}

	status, _, body := get(t, "GET", s.URL()+"/_mailroom/messages/"+a)
	var detail struct {
		Message
		Raw, Request []byte
	}
	if err := json.Unmarshal(body, &detail); status != 200 || err != nil {
		t.Fatalf("detail = %d %v", status, err)
	}
	sent, _ := s.Sent(a)
	if detail.MessageId != a || !bytes.Equal(detail.Raw, sent) || string(detail.Request) != "From: a@example.com\r\nTo: Ann@Example.org\r\nBcc: audit@example.com\r\n\r\nx" {
		t.Errorf("detail = %+v", detail)
	}

	status, hdr, _ := get(t, "GET", s.URL()+"/_mailroom/messages/0100-missing")
	if status != 404 || hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("missing detail = %d %s, want 404 problem+json", status, hdr.Get("Content-Type"))
	}
	if status, _, _ := get(t, "DELETE", s.URL()+"/_mailroom/messages/"+a); status != 204 {
		t.Errorf("DELETE one = %d", status)
	}
	if got := list(""); strings.Join(got, ",") != b {
		t.Errorf("after DELETE one: %v", got)
	}
	if status, _, _ := get(t, "DELETE", s.URL()+"/_mailroom/messages"); status != 204 {
		t.Errorf("DELETE all = %d", status)
	}
	if got := list(""); len(got) != 0 {
		t.Errorf("after DELETE all: %v", got)
	}
}

// The UI and JSON paths must not be mistaken for SES calls, and SES paths need SigV4 even when
// they are not SendEmail.
func TestRoutesKeepAPIAndUIApart(t *testing.T) {
	s := startServer(t, Options{})
	tests := []struct {
		method, path string
		wantStatus   int
		wantErrType  string
	}{
		{"GET", "/", 200, ""},
		{"GET", "/_mailroom/messages", 200, ""},
		{"POST", "/v2/email/outbound-emails", 403, "MissingAuthenticationTokenException"},
		{"GET", "/v2/email/outbound-emails", 403, "MissingAuthenticationTokenException"},
		{"GET", "/v2/email/account", 403, "MissingAuthenticationTokenException"},
		{"POST", "/_mailroom/messages", 405, ""},
		{"GET", "/elsewhere", 404, ""},
	}
	for _, tt := range tests {
		status, hdr, _ := get(t, tt.method, s.URL()+tt.path)
		if status != tt.wantStatus || hdr.Get("X-Amzn-ErrorType") != tt.wantErrType {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, status, hdr.Get("X-Amzn-ErrorType"), tt.wantStatus, tt.wantErrType)
		}
	}
}
