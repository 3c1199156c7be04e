package inbound_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/routing"
)

// TestArchiveListsGroupsAndLabels: the inbound path records the groups a message was delivered
// through and its labels, and the archive lists it under each, so a search by group or label
// finds it. A group that held the message did not deliver it, and does not list it.
func TestArchiveListsGroupsAndLabels(t *testing.T) {
	w := newWorld(t, nil)
	w.mailbox(t, "ana", w.extAddr("ana-home"))
	w.mailbox(t, "boss", w.extAddr("boss-home"))
	w.group(t, "sales", directory.Posting{Policy: directory.PostAnyone}, mbx(w.addr("ana")))
	w.group(t, "board", directory.Posting{Policy: directory.PostModerated}, mbx(w.addr("boss")))
	var rule routing.Rule
	if err := json.Unmarshal([]byte(`{"id":"invoices","name":"Invoices","priority":1,
		"when":[{"type":"subject","pattern":"(?i)invoice"}],"actions":[{"type":"label","value":"Invoices"}]}`), &rule); err != nil {
		t.Fatal(err)
	}
	w.rule(t, rule)
	sender := w.extAddr("kim")

	toGroups := w.deliver(t, simple(sender, w.addr("sales"), "Invoice 42"), sender, nil,
		w.addr("sales"), w.addr("board"), "ana+urgent@"+w.domain)
	direct := w.deliver(t, simple(sender, w.addr("ana"), "Lunch"), sender, nil, w.addr("ana"))

	ctx := context.Background()
	idx := dynamo.NewArchiveIndex(w.clients.DynamoDB, w.cfg.ArchiveTable)
	rec, err := idx.Get(ctx, toGroups.id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Groups, []string{"sales"}) {
		t.Errorf("record groups = %v, want [sales] (board held it)", rec.Groups)
	}
	if !slices.Contains(rec.Labels, "Invoices") || !slices.Contains(rec.Labels, "urgent") {
		t.Errorf("record labels = %v, want Invoices and urgent", rec.Labels)
	}
	if rec, err := idx.Get(ctx, direct.id); err != nil || len(rec.Groups) != 0 {
		t.Errorf("a message to a mailbox: groups %v (%v), want none", rec.Groups, err)
	}

	search := &archive.Search{Index: idx}
	for _, tt := range []struct {
		name string
		q    archive.Query
		want []string
	}{
		{"GRP# the group delivered through", archive.Query{Group: "sales"}, []string{toGroups.id}},
		{"GRP# not the group that held it", archive.Query{Group: "board"}, nil},
		{"LBL# a rule's label", archive.Query{Label: "invoices"}, []string{toGroups.id}},
		{"LBL# a plus-address's label", archive.Query{Label: "urgent"}, []string{toGroups.id}},
		{"BOX# the envelope recipient", archive.Query{Recipient: w.addr("board")}, []string{toGroups.id}},
		{"BOX# a mailbox", archive.Query{Mailbox: w.addr("ana")}, []string{direct.id}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page, err := search.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, it := range page.Items {
				ids = append(ids, it.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
}
