package seslocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v2/email/outbound-emails", requireSigV4(http.HandlerFunc(s.sendEmail)))
	mux.Handle("/v2/", requireSigV4(http.HandlerFunc(unknownOperation)))

	mux.HandleFunc("GET /{$}", s.indexPage)
	mux.HandleFunc("GET /messages/{name}", s.messagePage)
	mux.HandleFunc("GET /messages/{id}/request", s.requestBytes)

	mux.HandleFunc("GET /_mailroom/messages", s.listJSON)
	mux.HandleFunc("GET /_mailroom/messages/{id}", s.messageJSON)
	mux.HandleFunc("DELETE /_mailroom/messages", s.deleteAllJSON)
	mux.HandleFunc("DELETE /_mailroom/messages/{id}", s.deleteJSON)
	return s.accessLog(mux)
}

// requireSigV4 wants the header every SDK call carries. The signature is not checked: the local
// stack uses throwaway credentials, and a missing header means the caller is not the SDK as
// configured in production.
func requireSigV4(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch {
		case auth == "":
			writeAPIError(w, &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "Credential="):
			writeAPIError(w, &apiError{http.StatusForbidden, "IncompleteSignatureException", "Authorization header must be AWS Signature Version 4 (AWS4-HMAC-SHA256 Credential=...)."})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func unknownOperation(w http.ResponseWriter, r *http.Request) {
	writeAPIError(w, &apiError{http.StatusNotFound, "UnknownOperationException",
		"Mailroom's local SES endpoint implements only SendEmail (POST /v2/email/outbound-emails); got " + r.Method + " " + r.URL.Path + "."})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.Debug("seslocal: request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}

// problem writes an RFC 9457 problem for the /_mailroom API and pages.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}

func (s *Server) notFoundOr500(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, ErrNotFound) {
		problem(w, http.StatusNotFound, "no message "+id)
		return
	}
	s.log.Error("seslocal: read message", "message_id", id, "err", err)
	problem(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) listJSON(w http.ResponseWriter, r *http.Request) {
	msgs := s.store.list()
	if to := strings.TrimSpace(r.URL.Query().Get("to")); to != "" {
		kept := msgs[:0]
		for _, m := range msgs {
			if hasRecipient(m, to) {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	writeJSON(w, struct{ Messages []Message }{msgs})
}

// hasRecipient compares case-insensitively: mailbox case rarely matters and a test should not fail
// on it.
func hasRecipient(m Message, addr string) bool {
	for _, r := range m.Recipients {
		if strings.EqualFold(r, addr) {
			return true
		}
	}
	return false
}

func (s *Server) messageJSON(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, err := s.store.get(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	sent, err := s.store.sent(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	req, err := s.store.request(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	writeJSON(w, struct {
		Message
		Raw     []byte // as sent; base64 in JSON
		Request []byte // as requested; base64 in JSON
	}{m, sent, req})
}

func (s *Server) deleteAllJSON(w http.ResponseWriter, r *http.Request) {
	if err := s.store.deleteAll(); err != nil {
		s.log.Error("seslocal: delete messages", "err", err)
		problem(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteJSON(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.delete(id); err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) requestBytes(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, err := s.store.get(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	b, err := s.store.request(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	w.Header().Set("Content-Type", m.RequestContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"join": func(ss []string) string { return strings.Join(ss, ", ") },
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.}} · Mailroom local SES</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}pre{white-space:pre-wrap;background:#fafafa;border:1px solid #ddd;padding:1em}
.muted{color:#777}
</style></head><body>{{end}}

{{define "index"}}{{template "head" "Sent mail"}}
<h1>Sent mail <span class="muted">({{len .}})</span></h1>
{{if .}}<table><tr><th>Time</th><th>From</th><th>To</th><th>Subject</th></tr>
{{range .}}<tr><td>{{when .Timestamp}}</td><td>{{.From}}</td><td>{{join .Recipients}}</td>
<td><a href="/messages/{{.MessageId}}">{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</a></td></tr>
{{end}}</table>{{else}}<p class="muted">Nothing sent yet.</p>{{end}}
</body></html>{{end}}

{{define "message"}}{{template "head" .M.Subject}}
<p><a href="/">← all mail</a> · <a href="/messages/{{.M.MessageId}}.eml">as sent (.eml)</a> · <a href="/messages/{{.M.MessageId}}/request">as requested</a></p>
<h1>{{if .M.Subject}}{{.M.Subject}}{{else}}(no subject){{end}}</h1>
<table>
<tr><th>SES message id</th><td>{{.M.MessageId}}</td></tr>
<tr><th>Accepted</th><td>{{when .M.Timestamp}}</td></tr>
<tr><th>Envelope recipients</th><td>{{join .M.Recipients}}</td></tr>
{{with .M.ConfigurationSetName}}<tr><th>Configuration set</th><td>{{.}}</td></tr>{{end}}
{{with .M.EmailTags}}<tr><th>Tags</th><td>{{range .}}{{.Name}}={{.Value}} {{end}}</td></tr>{{end}}
{{with .M.ListManagementOptions}}<tr><th>List</th><td>{{.ContactListName}} {{.TopicName}}</td></tr>{{end}}
{{with .M.FeedbackForwardingEmailAddress}}<tr><th>Feedback to</th><td>{{.}}</td></tr>{{end}}
</table>
<h2>Headers</h2>
<table>{{range .Headers}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>
{{if .Attachments}}<h2>Attachments</h2><table>
{{range .Attachments}}<tr><td>{{.Name}}</td><td>{{.Type}}</td><td>{{.Size}} bytes</td></tr>{{end}}</table>{{end}}
<h2>{{.BodyLabel}}</h2>
{{if .Problem}}<p class="muted">{{.Problem}}</p>{{end}}
<pre>{{.Body}}</pre>
</body></html>{{end}}
`))

func (s *Server) indexPage(w http.ResponseWriter, r *http.Request) {
	renderPage(w, "index", s.store.list())
}

func renderPage(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		problem(w, http.StatusInternalServerError, "template: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// messagePage serves /messages/{id} (HTML) and /messages/{id}.eml (the bytes as sent): ServeMux
// wildcards take whole path segments, so the suffix is told apart here.
func (s *Server) messagePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	id, eml := strings.CutSuffix(name, ".eml")
	m, err := s.store.get(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	sent, err := s.store.sent(id)
	if err != nil {
		s.notFoundOr500(w, id, err)
		return
	}
	if eml {
		w.Header().Set("Content-Type", "message/rfc822")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": id + ".eml"}))
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(sent)
		return
	}
	renderPage(w, "message", readable(m, sent))
}

type pageHeader struct{ Name, Value string }

type pageAttachment struct {
	Name, Type string
	Size       int
}

type messageView struct {
	M           Message
	Headers     []pageHeader
	Attachments []pageAttachment
	BodyLabel   string
	Body        string
	Problem     string
}

// readable decodes a sent message for a person: headers with encoded-words decoded, the first
// text/plain part (or the HTML source when there is none), and a list of attachments.
func readable(m Message, sent []byte) messageView {
	v := messageView{M: m, BodyLabel: "Text"}
	e, err := message.Read(bytes.NewReader(sent))
	if e == nil {
		v.Problem = "This message cannot be parsed: " + err.Error()
		v.Body = string(sent)
		v.BodyLabel = "Source"
		return v
	}
	fields := e.Header.Fields()
	for fields.Next() {
		text, err := fields.Text()
		if err != nil {
			text = fields.Value()
		}
		v.Headers = append(v.Headers, pageHeader{fields.Key(), text})
	}
	var text, html string
	var haveText, haveHTML bool
	werr := e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && part == nil {
			return err
		}
		ctype, _, _ := part.Header.ContentType()
		disp, dparams, _ := part.Header.ContentDisposition()
		if strings.HasPrefix(ctype, "multipart/") {
			return nil
		}
		body, rerr := io.ReadAll(part.Body)
		if rerr != nil {
			v.Problem = "A part could not be decoded: " + rerr.Error()
		}
		filename := dparams["filename"]
		if filename == "" {
			_, cparams, _ := part.Header.ContentType()
			filename = cparams["name"]
		}
		switch {
		case disp == "attachment" || filename != "":
			v.Attachments = append(v.Attachments, pageAttachment{filename, ctype, len(body)})
		case (ctype == "text/plain" || ctype == "") && !haveText:
			text, haveText = string(body), true
		case ctype == "text/html" && !haveHTML:
			html, haveHTML = string(body), true
		}
		return nil
	})
	if werr != nil {
		v.Problem = "The MIME structure is broken: " + werr.Error()
	}
	switch {
	case haveText:
		v.Body = text
	case haveHTML:
		v.BodyLabel, v.Body = "HTML source", html
	default:
		v.BodyLabel = "No text part"
	}
	return v
}
