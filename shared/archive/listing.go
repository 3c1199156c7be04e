package archive

import (
	"slices"
	"strings"
)

// Kinds of listing: where a message can be found besides its own record. Mailbox, group and
// label listings are entries of their own, written with the record (Listings); sender and day
// are indexes of the record itself.
const (
	ListMailbox = "mailbox" // an envelope recipient's address
	ListGroup   = "group"   // a group the message was delivered through
	ListLabel   = "label"   // a label routing gave it
	ListSender  = "sender"  // the first From address
	ListDay     = "day"     // every message, by UTC day of receipt
)

// Listing is one listing a message belongs to: its kind and the value that names it (an address,
// a group id, a label), in the form it is keyed by.
type Listing struct {
	Kind string
	Key  string
}

// MaxListings bounds the listing entries of one record. A store writes them atomically with the
// record, and DynamoDB takes at most 100 items in a transaction, the record being one of them.
// Those past the bound are left out and the record is flagged FlagTruncatedListings; the record
// still names every recipient, group and label (up to its own bounds).
const MaxListings = 99

// FlagTruncatedListings marks a record some of whose listings were left out (MaxListings).
const FlagTruncatedListings = "truncated-listings"

// Listings are the listing entries stored for the record, in the order they are kept when there
// are too many: every distinct recipient's mailbox, then every group, then every label, at most
// MaxListings in all. Addresses and labels are lower-cased, so a search finds them in any case.
// This is the one definition of a record's listings: whatever writes them and whatever deletes
// them (retention) derives them from here.
func (r Record) Listings() []Listing {
	all := r.allListings()
	return all[:min(len(all), MaxListings)]
}

func (r Record) allListings() []Listing {
	var out []Listing
	seen := map[Listing]bool{}
	add := func(kind string, keys []string) {
		for _, k := range keys {
			l := Listing{Kind: kind, Key: strings.ToLower(strings.TrimSpace(k))}
			if l.Key == "" || seen[l] {
				continue
			}
			seen[l] = true
			out = append(out, l)
		}
	}
	add(ListMailbox, r.Recipients)
	add(ListGroup, r.Groups)
	add(ListLabel, r.Labels)
	return out
}

// ListingsCut reports whether the record has more listings than MaxListings.
func (r Record) ListingsCut() bool { return len(r.allListings()) > MaxListings }

// FlagCutListings flags a record whose listings do not all fit. Archive does it once the
// classifier has run; a store does it too, for records written without Archive (imports, tests).
func (r *Record) FlagCutListings() {
	if r.ListingsCut() && !slices.Contains(r.Flags, FlagTruncatedListings) {
		r.Flags = append(slices.Clone(r.Flags), FlagTruncatedListings)
		slices.Sort(r.Flags)
	}
}
