package export

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/fault"
)

// SearchPages feeds exports from the archive search: a selection's Search is the search API's
// query as JSON (archive.Query), read a page of the largest size at a time, newest first, as the
// search lists it. Wiring sets Service.Search to SearchPages(search).
func SearchPages(s *archive.Search) Searches {
	return func(query string) (PageFunc, error) {
		const op = "export.SearchPages"
		var q archive.Query
		dec := json.NewDecoder(strings.NewReader(query))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil {
			return nil, fault.InvalidField(op, "search", "not a search query: %v", err)
		}
		q.Cursor, q.Limit = "", archive.MaxLimit
		if _, err := s.Prepare(q); err != nil {
			return nil, err
		}
		return func(ctx context.Context, cursor string) ([]string, string, error) {
			q := q
			q.Cursor = cursor
			page, err := s.Search(ctx, q)
			if err != nil {
				return nil, "", err
			}
			ids := make([]string, len(page.Items))
			for i, it := range page.Items {
				ids[i] = it.ID
			}
			return ids, page.Next, nil
		}, nil
	}
}
