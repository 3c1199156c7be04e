package export

import (
	"context"
	"slices"
	"testing"
)

type fakePages struct {
	pages map[string][]string // by cursor
	next  map[string]string
}

func (f *fakePages) read(_ context.Context, cursor string) ([]string, string, error) {
	return f.pages[cursor], f.next[cursor], nil
}

func drain(t *testing.T, src Source) (ids, positions []string) {
	t.Helper()
	for {
		page, done, err := src.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			ids, positions = append(ids, e.ID), append(positions, e.After)
		}
		if done {
			return ids, positions
		}
	}
}

// TestPaged resumes a paged listing (a search) after any entry, across empty pages, and after
// messages joined the first page or one on it went.
func TestPaged(t *testing.T) {
	f := &fakePages{
		pages: map[string][]string{"": {"a", "b", "c"}, "p2": {}, "p3": {"d", "e"}},
		next:  map[string]string{"": "p2", "p2": "p3"},
	}
	all := []string{"a", "b", "c", "d", "e"}
	src, _ := Paged(f.read, "")
	ids, positions := drain(t, src)
	if !slices.Equal(ids, all) {
		t.Fatalf("ids = %v", ids)
	}
	for i, p := range positions {
		src, err := Paged(f.read, p)
		if err != nil {
			t.Fatal(err)
		}
		if rest, _ := drain(t, src); !slices.Equal(rest, all[i+1:]) {
			t.Errorf("after %s: %v, want %v", all[i], rest, all[i+1:])
		}
	}
	f.pages[""] = []string{"new", "a", "b", "c"} // newest first: new mail joins the top
	src, _ = Paged(f.read, positions[1])
	if rest, _ := drain(t, src); !slices.Equal(rest, []string{"c", "d", "e"}) {
		t.Errorf("after b, with new mail on the page: %v", rest)
	}
	f.pages[""] = []string{"a", "c"} // b is gone: resume by place
	src, _ = Paged(f.read, positions[1])
	if rest, _ := drain(t, src); !slices.Equal(rest, []string{"c", "d", "e"}) {
		t.Errorf("after b, gone: %v", rest)
	}
	if _, err := Paged(f.read, "not a position"); err == nil {
		t.Error("a damaged position was taken")
	}
}
