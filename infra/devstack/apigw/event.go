package apigw

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// event builds the payload format 2.0 event API Gateway sends for r on the $default route.
func (f *Front) event(r *http.Request, path string, body []byte, id string, at time.Time,
	authz *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) events.APIGatewayV2HTTPRequest {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// A custom domain's prefix is its first label; an address has none worth cutting.
	prefix := host
	if net.ParseIP(host) == nil {
		prefix, _, _ = strings.Cut(host, ".")
	}
	sourceIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies(r.Header),
		Headers:               f.headers(r, sourceIP, body),
		QueryStringParameters: query(r.URL.RawQuery),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     "$default",
			AccountID:    f.accountID,
			Stage:        "$default",
			RequestID:    id,
			Authorizer:   authz,
			APIID:        f.apiID,
			DomainName:   host,
			DomainPrefix: prefix,
			Time:         at.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    at.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// eventPath is the path as HTTP APIs report it in rawPath and http.path: percent-decoded, and
// cut at a decoded "?" (so /mailboxes/a%3Fb@example.com arrives as /mailboxes/a). Unlike REST
// APIs and function URLs, which keep the encoding; observed in live captures
// (https://github.com/middleapi/standard-server/pull/93, citing hotsock/voker#8).
func eventPath(r *http.Request) string {
	p, _, _ := strings.Cut(r.URL.Path, "?")
	return p
}

// headers are the request's headers as API Gateway passes them: names lower-cased, repeated
// fields joined with commas, cookies moved to their own field, and the fields API Gateway adds
// itself.
func (f *Front) headers(r *http.Request, sourceIP string, body []byte) map[string]string {
	h := make(map[string]string, len(r.Header)+5)
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			continue
		}
		if prev, ok := h[name]; ok {
			values = append([]string{prev}, values...)
		}
		h[name] = strings.Join(values, ",")
	}
	// net/http keeps these out of Header.
	h["host"] = r.Host
	if len(body) > 0 {
		h["content-length"] = strconv.Itoa(len(body))
	}
	if prev := h["x-forwarded-for"]; prev != "" {
		h["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		h["x-forwarded-for"] = sourceIP
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		h["x-forwarded-port"] = strconv.Itoa(a.Port)
	}
	// Not https as in AWS: the local front speaks plain HTTP, and a handler building links must
	// know.
	h["x-forwarded-proto"] = "http"
	if r.TLS != nil {
		h["x-forwarded-proto"] = "https"
	}
	if h["x-amzn-trace-id"] == "" {
		h["x-amzn-trace-id"] = traceID(f.now())
	}
	return h
}

// cookies are the request's cookies one per element, "name=value" as sent.
func cookies(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Cookie") {
		for _, c := range strings.Split(line, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// query decodes the query string, joining a repeated parameter's values with commas in the
// order they came.
func query(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// textual reports whether API Gateway passes a body of this type as text. AWS does not list the
// types; measured against HTTP APIs, only text/*, application/json, application/xml and
// application/javascript arrive as text. Everything else, a missing type, form posts and
// +json types such as application/merge-patch+json included, arrives base64-encoded
// (https://github.com/ministackorg/ministack/pull/766). A compressed body is binary whatever
// its type.
func textual(contentType, contentEncoding string) bool {
	if contentEncoding != "" && !strings.EqualFold(contentEncoding, "identity") {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript":
		return true
	}
	return strings.HasPrefix(mt, "text/")
}

// traceID is an X-Ray trace header of the form API Gateway adds when the caller sent none.
func traceID(at time.Time) string {
	var b [12]byte
	rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s", at.Unix(), hex.EncodeToString(b[:]))
}

// write turns the function's response into HTTP as a payload format 2.0 integration does, and
// returns the status written.
func (f *Front) write(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse, attrs []any) (int, error) {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return 0, fmt.Errorf("function returned status code %d", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return 0, fmt.Errorf("function returned isBase64Encoded with a body that is not base64: %w", err)
		}
	}
	// Format 2.0 reads only headers and cookies. API Gateway drops multiValueHeaders
	// (https://github.com/aws/serverless-java-container/issues/377, answered by the API Gateway
	// team), so they are dropped here too, loudly, rather than work locally and vanish in AWS.
	if len(resp.MultiValueHeaders) > 0 {
		names := make([]string, 0, len(resp.MultiValueHeaders))
		for k := range resp.MultiValueHeaders {
			names = append(names, k)
		}
		f.log.Warn("function returned multiValueHeaders, which HTTP APIs ignore; use headers (comma-joined) or cookies",
			append(attrs, "dropped", names)...)
	}
	out := w.Header()
	for k, v := range resp.Headers {
		out.Set(k, v)
	}
	for _, c := range resp.Cookies {
		out.Add("Set-Cookie", c)
	}
	if _, ok := out["Content-Type"]; !ok {
		// Without this net/http would sniff a type API Gateway never sends.
		out["Content-Type"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return resp.StatusCode, nil
}
