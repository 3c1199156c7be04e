package export

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// Entry is one listed message and the position just after it: a source opened at After lists
// what follows the entry. An export that stops resumes from the After of the last message in
// its uploaded parts.
type Entry struct {
	ID    string
	After string
}

// Source lists the messages an export holds, a page at a time, in a stable order.
type Source interface {
	// Next returns the next page; done is true when nothing follows it.
	Next(ctx context.Context) (entries []Entry, done bool, err error)
}

// Listing is what an export reads: the listings of mailboxes and groups (oldest first, within
// From and To when set), or an archive search.
type Listing struct {
	Mailboxes []string  `json:"mailboxes,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Search    string    `json:"search,omitempty"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
}

// Listings opens the mailbox and group listings of the archive (DynamoDB's BOX# and GRP#
// partitions), merged into one list without repeats, at after ("" for the start).
type Listings interface {
	Open(ctx context.Context, l Listing, after string) (Source, error)
}

// PageFunc reads one page of a paged listing: the ids on the page at cursor ("" for the first)
// and the cursor of the next page, "" after the last. The archive search API is one.
type PageFunc func(ctx context.Context, cursor string) (ids []string, next string, err error)

// Searches turns a search, as an export's selection carries it (the search API's query, as
// JSON), into its pages. It is where archive search plugs into exports.
type Searches func(query string) (PageFunc, error)

// Paged is a Source over a paged listing. An entry's position is the cursor of its page, the
// entry's place on it and its id: resuming reads that page again and goes on after the entry,
// found by its id (messages newer than the export may have joined the first page since), or at
// its place when it is gone.
func Paged(pages PageFunc, after string) (Source, error) {
	p := &paged{pages: pages}
	if after != "" {
		b, err := base64.RawURLEncoding.DecodeString(after)
		if err == nil {
			err = json.Unmarshal(b, &p.at)
		}
		if err != nil {
			return nil, fault.InvalidField("export.Paged", "after", "not a position of this listing")
		}
	}
	return p, nil
}

type pagePosition struct {
	Cursor string `json:"c,omitempty"`
	Place  int    `json:"p"`
	ID     string `json:"i"`
}

type paged struct {
	pages PageFunc
	at    pagePosition // where the listing resumes; ID is empty at a page's start
	done  bool
}

func (p *paged) Next(ctx context.Context) ([]Entry, bool, error) {
	for !p.done {
		ids, next, err := p.pages(ctx, p.at.Cursor)
		if err != nil {
			return nil, false, err
		}
		from := 0
		if p.at.ID != "" {
			// Gone: what followed it has moved up to its place. (Were mail also added above,
			// one message would be given twice, rather than one left out.)
			from = min(p.at.Place, len(ids))
			for i, id := range ids {
				if id == p.at.ID {
					from = i + 1
					break
				}
			}
		}
		var out []Entry
		for i := from; i < len(ids); i++ {
			b, _ := json.Marshal(pagePosition{Cursor: p.at.Cursor, Place: i, ID: ids[i]})
			out = append(out, Entry{ID: ids[i], After: base64.RawURLEncoding.EncodeToString(b)})
		}
		p.at = pagePosition{Cursor: next}
		p.done = next == ""
		if len(out) > 0 || p.done {
			return out, p.done, nil
		}
	}
	return nil, true, nil
}
