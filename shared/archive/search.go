package archive

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/mailroom/mailroom/shared/fault"
)

// Query is a search of the archive. One criterion picks the listing that is read: a mailbox or
// recipient, else a group, else a sender, else a label; with none of them, every message by day.
// The others narrow it. From and To bound the time of receipt (both included); a search by date
// alone spans at most MaxDays. It is also what the audit log records of a search, hence the JSON.
type Query struct {
	// Mailbox and Recipient both name an envelope recipient's listing: an address Mailroom serves
	// or any other the message was addressed to. Give one of them.
	Mailbox   string    `json:"mailbox,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	Group     string    `json:"group,omitempty"`
	Sender    string    `json:"sender,omitempty"`
	Label     string    `json:"label,omitempty"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	// Subject is words that must all appear in the subject, in any case ("invoice" finds
	// "Invoices"); a word is whatever lies between spaces.
	Subject       string `json:"subject,omitempty"`
	HasAttachment *bool  `json:"hasAttachment,omitempty"`
	Limit         int    `json:"limit,omitempty"`
	Cursor        string `json:"cursor,omitempty"`
}

// Bounds of a search.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxDays bounds a search by date alone: it reads one partition per day.
	MaxDays = 366
	// DefaultDays is how far back a search by date alone goes when it names no From.
	DefaultDays = 30
	maxWords    = 10
	maxWordLen  = 200
	maxCursor   = 4096
)

// Summary is a message as a search lists it: the attributes every listing carries.
type Summary struct {
	ID             string    `json:"id"`
	ReceivedAt     time.Time `json:"receivedAt"`
	FromAddr       string    `json:"fromAddr,omitempty"`
	Subject        string    `json:"subject,omitempty"`
	Size           int64     `json:"size"`
	HasAttachments bool      `json:"hasAttachments"`
	Labels         []string  `json:"labels,omitempty"`
	Flags          []string  `json:"flags,omitempty"`
}

// Page is one page of a search's results, newest first. Next continues it; it is empty on the
// last page. A filtered search may give fewer than its limit, even none, with a Next: see Searcher.
type Page struct {
	Items []Summary `json:"items"`
	Next  string    `json:"next,omitempty"`
}

// Plan is a validated search: one listing read newest first between From and To, and what each
// message in it must also satisfy.
type Plan struct {
	// Listing is the listing read; a search by date alone reads ListDay with no Key, one day
	// partition at a time from To's UTC day back to From's.
	Listing  Listing
	From, To time.Time // UTC, both included
	Filter   Filter
	Limit    int
}

// Filter is what a summary must satisfy besides being in the listing and range: the criteria no
// key serves. Sender and Label are set only when they are not the listing read.
type Filter struct {
	Sender        string
	Label         string
	Words         []string // lower case
	HasAttachment *bool
}

// Empty reports whether every summary passes.
func (f Filter) Empty() bool {
	return f.Sender == "" && f.Label == "" && len(f.Words) == 0 && f.HasAttachment == nil
}

// Match reports whether s passes the filter.
func (f Filter) Match(s Summary) bool {
	if f.Sender != "" && !strings.EqualFold(s.FromAddr, f.Sender) {
		return false
	}
	if f.Label != "" && !slices.ContainsFunc(s.Labels, func(l string) bool { return strings.EqualFold(l, f.Label) }) {
		return false
	}
	if f.HasAttachment != nil && s.HasAttachments != *f.HasAttachment {
		return false
	}
	if len(f.Words) > 0 {
		subject := strings.ToLower(s.Subject)
		for _, w := range f.Words {
			if !strings.Contains(subject, w) {
				return false
			}
		}
	}
	return true
}

// Position is where a page of a search stopped, as the Searcher that read it describes it: the day
// partition it was in (searches by date alone) and the key of the last message it examined, or no
// key for the start of Day. It travels inside the cursor.
type Position struct {
	Day string            `json:"d,omitempty"`
	Key map[string]string `json:"k,omitempty"`
}

// Searcher reads listings (DynamoDB: the archive table's listing items and indexes, never a scan).
type Searcher interface {
	// Search returns up to p.Limit summaries of p's listing, newest first, that p.Filter passes,
	// starting after `after` (nil: from the start), and where the next page starts (nil: there is
	// none). A filter is applied to what a read returns, so a page examines a bounded number of
	// messages; when that runs out it returns fewer than p.Limit, possibly none, with a Position.
	// A Position that does not fit p is a fault.Invalid error naming "cursor".
	Search(ctx context.Context, p Plan, after *Position) ([]Summary, *Position, error)
}

// Search validates queries and pages through the Searcher's listings.
type Search struct {
	Index Searcher
	Now   func() time.Time
}

// Prepared is a validated query, ready to run.
type Prepared struct {
	// Query is the query as asked, its values normalised; it is what an audit entry records.
	Query       Query
	Plan        Plan
	after       *Position
	fingerprint string
}

// Scope names what a search reads, for the audit log: "mailbox:<address>", "group:<id>",
// "sender:<address>", "label:<label>", or "all" for a search by date alone.
func (p Prepared) Scope() string {
	if p.Plan.Listing.Kind == ListDay {
		return "all"
	}
	return p.Plan.Listing.Kind + ":" + p.Plan.Listing.Key
}

// Search runs a query: Prepare, then Run.
func (s *Search) Search(ctx context.Context, q Query) (Page, error) {
	p, err := s.Prepare(q)
	if err != nil {
		return Page{}, err
	}
	return s.Run(ctx, p)
}

// groupID is a directory group id.
var groupID = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// Prepare validates q and chooses the listing that serves it. Errors are fault.Invalid naming the
// query's field.
func (s *Search) Prepare(q Query) (Prepared, error) {
	const op = "archive.Search"
	var err error
	for _, f := range []struct {
		name string
		v    *string
	}{{"mailbox", &q.Mailbox}, {"recipient", &q.Recipient}, {"sender", &q.Sender}} {
		if *f.v, err = searchAddress(op, f.name, *f.v); err != nil {
			return Prepared{}, err
		}
	}
	q.Group = strings.ToLower(strings.TrimSpace(q.Group))
	if q.Group != "" && !groupID.MatchString(q.Group) {
		return Prepared{}, fault.InvalidField(op, "group", "is not a group id: lower-case letters, digits and -, at most 64")
	}
	q.Label = strings.ToLower(strings.TrimSpace(q.Label))
	if len(q.Label) > 256 || strings.ContainsFunc(q.Label, unicode.IsControl) {
		return Prepared{}, fault.InvalidField(op, "label", "is not a label: at most 256 characters, none of them control characters")
	}
	q.Subject = strings.TrimSpace(q.Subject)
	words := strings.Fields(strings.ToLower(q.Subject))
	if len(words) > maxWords {
		return Prepared{}, fault.InvalidField(op, "subject", "has %d words; a search takes at most %d", len(words), maxWords)
	}
	for _, w := range words {
		if len(w) > maxWordLen || strings.ContainsFunc(w, unicode.IsControl) {
			return Prepared{}, fault.InvalidField(op, "subject", "words are at most %d bytes, without control characters", maxWordLen)
		}
	}
	switch {
	case q.Limit == 0:
	case q.Limit < 1 || q.Limit > MaxLimit:
		return Prepared{}, fault.InvalidField(op, "limit", "must be from 1 to %d", MaxLimit)
	}
	if q.Mailbox != "" && q.Recipient != "" {
		return Prepared{}, fault.InvalidField(op, "recipient", "give mailbox or recipient, not both: they name the same listing")
	}
	if q.Group != "" && (q.Mailbox != "" || q.Recipient != "") {
		return Prepared{}, fault.InvalidField(op, "group", "search a group or a mailbox, not both: neither listing records the other")
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return Prepared{}, fault.InvalidField(op, "from", "is after to")
	}

	p := Prepared{Query: q, Plan: Plan{
		From: q.From.UTC(), To: q.To.UTC(), Limit: q.Limit,
		Filter: Filter{Words: words, HasAttachment: q.HasAttachment},
	}}
	if p.Plan.Limit == 0 {
		p.Plan.Limit = DefaultLimit
	}
	if p.Plan.To.IsZero() {
		p.Plan.To = s.now().UTC()
	}
	// A sender's mail is usually fewer messages than a label's, so it is the listing read when
	// both are asked for, and the label a filter.
	switch {
	case q.Mailbox != "" || q.Recipient != "":
		p.Plan.Listing = Listing{Kind: ListMailbox, Key: cmp.Or(q.Mailbox, q.Recipient)}
		p.Plan.Filter.Sender, p.Plan.Filter.Label = q.Sender, q.Label
	case q.Group != "":
		p.Plan.Listing = Listing{Kind: ListGroup, Key: q.Group}
		p.Plan.Filter.Sender, p.Plan.Filter.Label = q.Sender, q.Label
	case q.Sender != "":
		p.Plan.Listing = Listing{Kind: ListSender, Key: q.Sender}
		p.Plan.Filter.Label = q.Label
	case q.Label != "":
		p.Plan.Listing = Listing{Kind: ListLabel, Key: q.Label}
	default:
		p.Plan.Listing = Listing{Kind: ListDay}
		if p.Plan.From.IsZero() {
			p.Plan.From = p.Plan.To.AddDate(0, 0, -DefaultDays)
		}
		if p.Plan.To.Sub(p.Plan.From) > MaxDays*24*time.Hour {
			return Prepared{}, fault.InvalidField(op, "from", "a search by date alone spans at most %d days; name a mailbox, group, sender or label to search further", MaxDays)
		}
	}
	if p.Plan.From.After(p.Plan.To) {
		return Prepared{}, fault.InvalidField(op, "from", "is after to (now, when to is not given)")
	}
	p.fingerprint = fingerprint(q, words)
	if q.Cursor != "" {
		if p.after, err = decodeCursor(op, q.Cursor, p.fingerprint, p.Plan); err != nil {
			return Prepared{}, err
		}
	}
	return p, nil
}

// Run reads one page.
func (s *Search) Run(ctx context.Context, p Prepared) (Page, error) {
	items, pos, err := s.Index.Search(ctx, p.Plan, p.after)
	if err != nil {
		return Page{}, err
	}
	if items == nil {
		items = []Summary{}
	}
	page := Page{Items: items}
	if pos != nil {
		if page.Next, err = encodeCursor(p.fingerprint, *pos); err != nil {
			return Page{}, fault.Wrap(fault.Internal, "archive.Search", err)
		}
	}
	return page, nil
}

func (s *Search) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// searchAddress normalises an address criterion as listings key addresses: trimmed, lower case.
func searchAddress(op, field, v string) (string, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return "", nil
	}
	at := strings.LastIndexByte(v, '@')
	if at < 1 || at == len(v)-1 || len(v) > 320 || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", fault.InvalidField(op, field, "is not an address such as ana@example.com")
	}
	return v, nil
}

// fingerprint identifies a query's criteria, so that a cursor is only taken by the query that
// made it. It covers the times as asked, not as defaulted: "the last 30 days" asked again a minute
// later is the same query, and its cursor goes on where it stopped. Limit may change between pages.
func fingerprint(q Query, words []string) string {
	b, _ := json.Marshal(struct {
		Mailbox, Recipient, Group, Sender, Label string
		From, To                                 time.Time
		Words                                    []string
		HasAttachment                            *bool
	}{q.Mailbox, q.Recipient, q.Group, q.Sender, q.Label, q.From.UTC(), q.To.UTC(), words, q.HasAttachment})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// cursor is what an opaque cursor holds: the fingerprint of its query and the position.
type cursor struct {
	Query string `json:"q"`
	Position
}

func encodeCursor(fp string, pos Position) (string, error) {
	b, err := json.Marshal(cursor{Query: fp, Position: pos})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor reads a cursor of the query with fingerprint fp. A cursor of another query, or a
// damaged one, is refused: the Searcher would otherwise read from a key of another listing.
func decodeCursor(op, s, fp string, p Plan) (*Position, error) {
	bad := fault.InvalidField(op, "cursor", "not a cursor of this search")
	if len(s) > maxCursor {
		return nil, bad
	}
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Query != fp || (c.Day == "" && len(c.Key) == 0) {
		return nil, bad
	}
	if p.Listing.Kind != ListDay {
		if c.Day != "" {
			return nil, bad
		}
		return &c.Position, nil
	}
	day, err := time.Parse(time.DateOnly, c.Day)
	if err != nil || day.After(p.To) {
		return nil, bad
	}
	return &c.Position, nil
}
