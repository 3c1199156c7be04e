// Package admin is the admin API Lambda behind API Gateway (HTTP API, payload format 2.0). It turns
// each request into a call on the directory service, after checking who is asking; docs/admin-api.md
// and api/openapi.yaml describe the API. The package is importable so the local stack serves exactly
// this handler; bootstrap/ is the Lambda entry point.
package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/delivery"
	"github.com/mailroom/mailroom/shared/destinations"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/links"
	"github.com/mailroom/mailroom/shared/moderation"
	"github.com/mailroom/mailroom/shared/routing"
	"github.com/mailroom/mailroom/shared/s3store"
	"github.com/mailroom/mailroom/shared/sesmail"
	"github.com/mailroom/mailroom/shared/sla"
)

// Config is read from the environment once, at start.
type Config struct {
	// DirectoryTable holds domains, mailboxes, aliases, groups and their members.
	DirectoryTable string `env:"DIRECTORY_TABLE,required"`
	// AuditTable holds the audit log.
	AuditTable string `env:"AUDIT_TABLE,required"`
	// StateTable holds what became of sent mail per destination, and the suspended destinations.
	StateTable string `env:"STATE_TABLE,required"`
	// MailBucket holds the archive, from which approved held mail is released.
	MailBucket string `env:"MAIL_BUCKET,required"`
	// ArchiveTable holds the archive's records and listings, which /archive searches (read only).
	ArchiveTable string `env:"ARCHIVE_TABLE"`
	// ConfigurationSet is named on every send so SES reports each destination's outcome.
	ConfigurationSet string `env:"CONFIGURATION_SET"`
	// LinkBaseURL is this API's own URL, for the link in the notice that replaces a released
	// message too large to forward.
	LinkBaseURL string `env:"LINK_BASE_URL"`
	// RolesClaim names the JWT claim that carries the caller's Mailroom roles.
	RolesClaim string `env:"ROLES_CLAIM" envDefault:"mailroom:roles"`
}

// Handler serves the admin API.
type Handler struct {
	cfg       Config
	directory *directory.Service
	// destinations answers /destinations; nil when the handler was built without it, and then
	// those routes answer 503.
	destinations *destinations.Service
	// originals checks links to archived originals; presign hands out the download.
	originals *links.Originals
	presign   func(ctx context.Context, key string, expires time.Time) (string, error)
	// moderation answers /moderation; nil as destinations is.
	moderation *moderation.Service
	links      *moderation.Links
	replays    replays
	router     *routing.Router
	log        *slog.Logger
	mux        *http.ServeMux
	routes     []string
	// replies plans the automatic replies a previewed message gets; its Ledger, which says who
	// was already answered, is nil without a state table.
	replies *autoreply.Planner
	// sla answers /conversations and /reports/sla; nil as destinations is.
	sla *sla.Service
	// search and records answer /archive; nil as destinations is.
	search  *archive.Search
	records archive.Index
}

// replays reads remembered answers to idempotent requests.
type replays interface {
	Replay(ctx context.Context, key string) (directory.Replay, error)
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) (*Handler, error) {
	store := dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, cfg.AuditTable)
	svc := &directory.Service{Store: store, Audit: store, Now: time.Now}
	h := NewHandler(cfg, svc, store, log)
	if cfg.ArchiveTable != "" {
		idx := dynamo.NewArchiveIndex(clients.DynamoDB, cfg.ArchiveTable)
		h.WithArchive(&archive.Search{Index: idx, Now: time.Now}, idx)
	}
	// The Lambda's configuration requires STATE_TABLE; only a local caller that predates the
	// destinations routes leaves it out, and gets 503 from them.
	if cfg.StateTable != "" {
		h.replies.Ledger = dynamo.NewAutoReplies(clients.DynamoDB, cfg.StateTable)
		dests := &destinations.Service{Store: dynamo.NewDestinations(clients.DynamoDB, cfg.StateTable), Now: time.Now}
		h.WithDestinations(dests)
		h.WithSLA(&sla.Service{Store: dynamo.NewConversations(clients.DynamoDB, cfg.StateTable), Policies: sla.Policies{Settings: store}, Now: time.Now})
		if cfg.MailBucket != "" {
			// One key signs every link Mailroom writes; the state table keeps it.
			signer := &links.Signer{Now: time.Now, Key: func(ctx context.Context) ([]byte, error) {
				return dynamo.LinkKey(ctx, clients.DynamoDB, cfg.StateTable)
			}}
			h.WithModeration(Moderation(cfg, clients, h.router, dests, signer), &moderation.Links{Signer: signer})
			h.originals = &links.Originals{Signer: signer}
			h.presign = s3store.New(clients.S3, cfg.MailBucket).Link
		}
	}
	return h, nil
}

// Moderation wires the moderation service: approving a hold routes the archived original again
// and delivers it, exactly as the inbound function would have.
func Moderation(cfg Config, clients awsclient.Clients, router *routing.Router, dests *destinations.Service, signer *links.Signer) *moderation.Service {
	objects := s3store.New(clients.S3, cfg.MailBucket)
	var originals delivery.Links = objects
	if cfg.LinkBaseURL != "" {
		originals = &links.Originals{Base: cfg.LinkBaseURL, Signer: signer}
	}
	deliv := &delivery.Service{
		Sender:    sesmail.New(clients.SES, cfg.ConfigurationSet),
		Ledger:    dynamo.NewLedger(clients.DynamoDB, cfg.StateTable),
		Links:     originals,
		Suspended: delivery.SuspendedSet(dests),
		Now:       time.Now,
	}
	rel := &moderation.Releaser{Open: objects.Open, Router: router, Delivery: deliv}
	svc := &moderation.Service{
		Store:   dynamo.NewHolds(clients.DynamoDB, cfg.StateTable),
		Groups:  dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, ""),
		Sender:  deliv.Sender,
		Release: rel.Release,
		Now:     time.Now,
	}
	return svc
}

// NewHandler serves svc; replays is where svc's store keeps idempotent answers.
func NewHandler(cfg Config, svc *directory.Service, replays replays, log *slog.Logger) *Handler {
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "mailroom:roles"
	}
	h := &Handler{cfg: cfg, directory: svc, replays: replays, log: log, mux: http.NewServeMux()}
	h.router = &routing.Router{Directory: svc.Store}
	h.replies = &autoreply.Planner{Directory: svc.Store}
	if ss, ok := svc.Store.(directory.SettingStore); ok {
		h.router.Rules = routing.StoredRules{Store: ss}
		// Closed mailboxes answer with their notice, as they do for the inbound function.
		h.router.Closed = autoreply.ClosedNotices{Settings: ss}
		h.replies.Settings = ss
	}
	h.register()
	return h
}

// WithModeration serves the moderation routes from svc; links checks the signed links.
func (h *Handler) WithModeration(svc *moderation.Service, links *moderation.Links) *Handler {
	h.moderation, h.links = svc, links
	return h
}

// WithDestinations serves the destinations routes from svc, which needs no Notifier: the API
// reads and reinstates, and never records outcomes. Call it before the handler serves.
func (h *Handler) WithDestinations(svc *destinations.Service) *Handler {
	h.destinations = svc
	return h
}

// Routes lists the handler's routes as "METHOD /path/{param}".
func (h *Handler) Routes() []string { return h.routes }

// maxBody is API Gateway HTTP API's payload limit.
const maxBody = 10 << 20

// Handle answers one API Gateway HTTP API request by running it through the handler's routes as an
// http.Request, so that routing, headers and status codes follow net/http's rules.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return jsonEvent(http.StatusBadRequest, problemFor(http.StatusBadRequest, "the request body is not valid base64", "body")), nil
		}
		body = b
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	u := &url.URL{Path: path, RawQuery: ev.RawQueryString}
	req, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return jsonEvent(http.StatusBadRequest, problemFor(http.StatusBadRequest, "the request line is malformed", "")), nil
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	for _, c := range ev.Cookies {
		req.Header.Add("Cookie", c)
	}
	req = req.WithContext(withRequest(ctx, requestInfo{
		id:     ev.RequestContext.RequestID,
		claims: claimsOf(ev),
		scopes: scopesOf(ev),
	}))

	rec := newRecorder()
	h.ServeHTTP(rec, req)
	return rec.event(), nil
}

func claimsOf(ev events.APIGatewayV2HTTPRequest) map[string]string {
	if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
		return a.JWT.Claims
	}
	return nil
}

func scopesOf(ev events.APIGatewayV2HTTPRequest) []string {
	if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
		return a.JWT.Scopes
	}
	return nil
}

// recorder collects a response for the Lambda event.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) event() events.APIGatewayV2HTTPResponse {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: r.status, Headers: map[string]string{}}
	for k, vs := range r.header {
		out.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	ct := r.header.Get("Content-Type")
	if textual(ct) {
		out.Body = r.body.String()
	} else if r.body.Len() > 0 {
		out.Body = base64.StdEncoding.EncodeToString(r.body.Bytes())
		out.IsBase64Encoded = true
	}
	return out
}

func textual(ct string) bool {
	return ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "yaml")
}

func jsonEvent(status int, p problem) events.APIGatewayV2HTTPResponse {
	rec := newRecorder()
	writeProblem(rec, p)
	return rec.event()
}
