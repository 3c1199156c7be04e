// Package apigw is the local stack's stand-in for an API Gateway HTTP API with a JWT authorizer:
// it checks development tokens as the authorizer would, turns each HTTP request into the payload
// format 2.0 event API Gateway sends, calls the admin function's handler in-process and turns its
// answer back into HTTP.
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/fault"
)

// Handler answers one API Gateway HTTP API request, as the admin function's Handle does.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// ErrClosed is returned by Serve after Close, as net/http does.
var ErrClosed = errors.New("apigw: closed")

// JWKSPath is where the front publishes its public key, the jwks_uri a deployed authorizer
// would point at.
const JWKSPath = "/.well-known/jwks.json"

// Config configures a Front. Handler and Keys are required.
type Config struct {
	Handler Handler
	// Keys verify tokens; LoadOrCreateKeys gives the ones `mailroom login` signs with.
	Keys *Keys
	// Issuer and Audience are the authorizer's; default DefaultIssuer and DefaultAudience.
	Issuer, Audience string
	// Public reports the routes served without a token, as routes without an authorizer are
	// (GET /openapi.yaml). nil means every route needs one.
	Public func(method, path string) bool
	// MaxBody is the largest request body accepted, default 10 MiB (HTTP API's payload limit).
	MaxBody int64

	// AccountID and APIID name the API in events; default 000000000000 and "local".
	AccountID, APIID string

	Now   func() time.Time
	NewID func() string // request ids; default shaped like API Gateway's ("LV7fzho-PHcEJPw=")
	Log   *slog.Logger
}

const defaultMaxBody = 10 << 20

// Front is a running HTTP API. It is safe for concurrent use.
type Front struct {
	handler   Handler
	auth      authorizer
	public    func(method, path string) bool
	maxBody   int64
	accountID string
	apiID     string
	now       func() time.Time
	newID     func() string
	log       *slog.Logger
	srv       *http.Server
}

var _ http.Handler = (*Front)(nil)

// New checks cfg and returns a Front ready to Serve, or to use as an http.Handler.
func New(cfg Config) (*Front, error) {
	const op = "apigw.New"
	switch {
	case cfg.Handler == nil:
		return nil, fault.InvalidField(op, "Handler", "required: the function behind the API")
	case cfg.Keys == nil:
		return nil, fault.InvalidField(op, "Keys", "required: the keys tokens are verified with")
	case cfg.MaxBody < 0:
		return nil, fault.InvalidField(op, "MaxBody", "must not be negative")
	}
	f := &Front{
		handler:   cfg.Handler,
		public:    cfg.Public,
		maxBody:   cfg.MaxBody,
		accountID: or(cfg.AccountID, "000000000000"),
		apiID:     or(cfg.APIID, "local"),
		now:       cfg.Now,
		newID:     cfg.NewID,
		log:       cfg.Log,
	}
	if f.public == nil {
		f.public = func(string, string) bool { return false }
	}
	if f.maxBody == 0 {
		f.maxBody = defaultMaxBody
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.newID == nil {
		f.newID = randomID
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.auth = authorizer{
		keys:     cfg.Keys,
		issuer:   or(cfg.Issuer, DefaultIssuer),
		audience: or(cfg.Audience, DefaultAudience),
		now:      f.now,
	}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
	}
	return f, nil
}

// Serve answers HTTP requests on l until Close. A TCP listener must be on a loopback address, as
// the stack's other servers are: anyone who can read the state directory can mint an admin
// token, and the front would accept it from anywhere.
func (f *Front) Serve(l net.Listener) error {
	if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		l.Close()
		return fault.InvalidField("apigw.Serve", "listener", "%s is not a loopback address", a)
	}
	if err := f.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ErrClosed
}

// Close stops listening and drops open connections.
func (f *Front) Close() error { return f.srv.Close() }

// ServeHTTP does for one request what API Gateway does: authorize, build the event, invoke,
// translate the answer.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := f.now()
	id := f.newID()
	w.Header().Set("Apigw-Requestid", id)
	path := eventPath(r)
	attrs := []any{"request_id", id, "method", r.Method, "path", path}

	if r.URL.Path == JWKSPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(f.auth.keys.JWKS())
		return
	}

	var authz *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	if !f.public(r.Method, path) {
		var err error
		authz, err = f.auth.authorize(r.Header.Get("Authorization"))
		if err != nil {
			var d *denial
			errors.As(err, &d)
			w.Header().Set("Www-Authenticate", d.challenge())
			writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			f.log.Info("api request refused by the authorizer", append(attrs, "status", http.StatusUnauthorized, "reason", or(d.description, "no token"))...)
			return
		}
		attrs = append(attrs, "sub", authz.JWT.Claims["sub"])
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, f.maxBody+1))
	if err != nil {
		f.log.Warn("api request body unreadable", append(attrs, "err", err)...)
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if int64(len(body)) > f.maxBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		f.log.Info("api request too large", append(attrs, "status", http.StatusRequestEntityTooLarge, "max", f.maxBody)...)
		return
	}

	ev, err := roundTrip(f.event(r, path, body, id, start, authz))
	if err != nil {
		f.internalError(w, attrs, err)
		return
	}
	// A Lambda invocation runs to its end when the caller hangs up; cancelling it here would
	// stop writes halfway that in AWS complete.
	resp, err := invokeSafely(context.WithoutCancel(r.Context()), f.handler, ev)
	if err != nil {
		f.internalError(w, attrs, fmt.Errorf("function error: %w", err))
		return
	}
	status, err := f.write(w, resp, attrs)
	if err != nil {
		f.internalError(w, attrs, err)
		return
	}
	f.log.Info("api request", append(attrs, "status", status, "ms", f.now().Sub(start).Milliseconds())...)
}

// internalError answers as API Gateway does when the integration fails: the caller sees a bare
// 500, the log sees why.
func (f *Front) internalError(w http.ResponseWriter, attrs []any, err error) {
	writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
	f.log.Error("api request failed", append(attrs, "status", http.StatusInternalServerError, "err", err)...)
}

// writeMessage writes API Gateway's own error body.
func writeMessage(w http.ResponseWriter, status int, message string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// roundTrip hands the function the event as Lambda would: decoded from its JSON, so fields that
// do not survive encoding (empty maps, invalid UTF-8) do not survive here either.
func roundTrip(ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPRequest, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, err
	}
	var out events.APIGatewayV2HTTPRequest
	err = json.Unmarshal(b, &out)
	return out, err
}

// invokeSafely turns a panic into an error, as the Lambda runtime reports one as a failed
// invocation instead of taking the whole local stack down.
func invokeSafely(ctx context.Context, h Handler, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, ev)
}

// randomID returns an id shaped like API Gateway's: 11 random bytes, base64 with padding.
func randomID() string {
	var b [11]byte
	rand.Read(b[:])
	return base64.URLEncoding.EncodeToString(b[:])
}
