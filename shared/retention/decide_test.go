package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/mail"
)

var received = time.Date(2025, 3, 10, 9, 30, 0, 0, time.UTC)

func msg(change func(*archive.Record)) archive.Record {
	r := archive.Record{
		ID: "m1", Key: "archive/2025/03/10/m1.eml", ReceivedAt: received,
		EnvelopeFrom: "bounce@vendor.example",
		Recipients:   []string{"Sales@Example.com"},
		From:         []mail.Address{{Name: "Kim", Address: "Kim@Client.example"}},
		To:           []mail.Address{{Address: "sales@example.com"}},
		Cc:           []mail.Address{{Address: "ana@example.com"}},
		Subject:      "Quote for the ACME merger",
		Groups:       []string{"sales"},
		Labels:       []string{"Invoices"},
	}
	if change != nil {
		change(&r)
	}
	return r
}

func keep(id, kind, value string, days int) Policy {
	return Policy{ID: id, Scope: Scope{Kind: kind, Value: value}, KeepDays: days}
}

func forever(id, kind, value string) Policy {
	return Policy{ID: id, Scope: Scope{Kind: kind, Value: value}, Forever: true}
}

func hold(id, kind, value string) Hold {
	return Hold{ID: id, Scope: Scope{Kind: kind, Value: value}, Reason: "matter 1", Owner: "counsel@example.com"}
}

func query(id string, q Query) Hold {
	return Hold{ID: id, Scope: Scope{Kind: ScopeQuery, Query: &q}, Reason: "matter 2", Owner: "counsel@example.com"}
}

func days(n int) time.Time { return received.Add(time.Duration(n) * Day) }

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		rec      archive.Record
		policies []Policy
		holds    []Hold
		now      time.Time
		want     Verdict
	}{
		{"no policy keeps", msg(nil), nil, nil, days(10000),
			Verdict{}},
		{"policies of other scopes keep", msg(nil), []Policy{keep("p", ScopeDomain, "other.example", 1), keep("q", ScopeGroup, "support", 1), keep("r", ScopeLabel, "spam", 1)}, nil, days(10000),
			Verdict{}},
		{"expired by domain", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 30)}, nil, days(30),
			Verdict{Delete: true, Policy: "p", KeepDays: 30, KeepUntil: days(30)}},
		{"a moment before the end", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 30)}, nil, days(30).Add(-time.Nanosecond),
			Verdict{Policy: "p", KeepDays: 30, KeepUntil: days(30)}},
		{"domain of the sender", msg(nil), []Policy{keep("p", ScopeDomain, "client.example", 5)}, nil, days(5),
			Verdict{Delete: true, Policy: "p", KeepDays: 5, KeepUntil: days(5)}},
		{"mailbox as envelope recipient, any case", msg(nil), []Policy{keep("p", ScopeMailbox, "sales@example.com", 7)}, nil, days(8),
			Verdict{Delete: true, Policy: "p", KeepDays: 7, KeepUntil: days(7)}},
		{"mailbox in Cc", msg(nil), []Policy{keep("p", ScopeMailbox, "ana@example.com", 7)}, nil, days(8),
			Verdict{Delete: true, Policy: "p", KeepDays: 7, KeepUntil: days(7)}},
		{"mailbox as sender", msg(nil), []Policy{keep("p", ScopeMailbox, "kim@client.example", 7)}, nil, days(8),
			Verdict{Delete: true, Policy: "p", KeepDays: 7, KeepUntil: days(7)}},
		{"group", msg(nil), []Policy{keep("p", ScopeGroup, "sales", 7)}, nil, days(8),
			Verdict{Delete: true, Policy: "p", KeepDays: 7, KeepUntil: days(7)}},
		{"label in any case", msg(nil), []Policy{keep("p", ScopeLabel, "invoices", 7)}, nil, days(8),
			Verdict{Delete: true, Policy: "p", KeepDays: 7, KeepUntil: days(7)}},
		{"longest wins", msg(nil), []Policy{keep("short", ScopeDomain, "example.com", 30), keep("long", ScopeGroup, "sales", 365), keep("mid", ScopeLabel, "invoices", 90)}, nil, days(100),
			Verdict{Policy: "long", KeepDays: 365, KeepUntil: days(365)}},
		{"longest wins, expired", msg(nil), []Policy{keep("short", ScopeDomain, "example.com", 30), keep("long", ScopeGroup, "sales", 365)}, nil, days(365),
			Verdict{Delete: true, Policy: "long", KeepDays: 365, KeepUntil: days(365)}},
		{"forever beats any number", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", MaxKeepDays), forever("f", ScopeLabel, "invoices")}, nil, days(MaxKeepDays + 1),
			Verdict{Policy: "f", Forever: true}},
		{"equal policies: the smaller id", msg(nil), []Policy{keep("b", ScopeDomain, "example.com", 30), keep("a", ScopeGroup, "sales", 30)}, nil, days(30),
			Verdict{Delete: true, Policy: "a", KeepDays: 30, KeepUntil: days(30)}},
		{"held by mailbox", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("h", ScopeMailbox, "ana@example.com")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"held by group", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("h", ScopeGroup, "sales")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"held by label", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("h", ScopeLabel, "invoices")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"held by sender address", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("h", ScopeSender, "kim@client.example")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"held by envelope sender's domain", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("h", ScopeSender, "vendor.example")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"held by query", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)},
			[]Hold{query("h", Query{Sender: "client.example", Recipient: "sales@example.com", From: received, To: received, Subject: "acme MERGER"})}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"several holds, sorted", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)}, []Hold{hold("z", ScopeGroup, "sales"), hold("a", ScopeLabel, "invoices")}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"a", "z"}}},
		{"a hold on a message still in its days is reported", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 10)}, []Hold{hold("h", ScopeGroup, "sales")}, days(2),
			Verdict{Policy: "p", KeepDays: 10, KeepUntil: days(10), HeldBy: []string{"h"}}},
		{"holds that do not cover it", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)},
			[]Hold{hold("a", ScopeMailbox, "bob@example.com"), hold("b", ScopeGroup, "support"), hold("c", ScopeLabel, "legal"), hold("d", ScopeSender, "other.example"),
				query("e", Query{Subject: "acme invoice"}), query("f", Query{From: received.Add(time.Second)}), query("g", Query{To: received.Add(-time.Second)}),
				query("i", Query{Sender: "kim@client.example", Recipient: "bob@example.com"})}, days(2),
			Verdict{Delete: true, Policy: "p", KeepDays: 1, KeepUntil: days(1)}},
		{"a released hold no longer holds", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)},
			[]Hold{func() Hold { h := hold("h", ScopeGroup, "sales"); h.ReleasedAt = days(2); return h }()}, days(2),
			Verdict{Delete: true, Policy: "p", KeepDays: 1, KeepUntil: days(1)}},
		{"a hold released in the future still holds", msg(nil), []Policy{keep("p", ScopeDomain, "example.com", 1)},
			[]Hold{func() Hold { h := hold("h", ScopeGroup, "sales"); h.ReleasedAt = days(3); return h }()}, days(2),
			Verdict{Policy: "p", KeepDays: 1, KeepUntil: days(1), HeldBy: []string{"h"}}},
		{"a hold keeps forever-policy mail too", msg(nil), []Policy{forever("f", ScopeGroup, "sales")}, []Hold{hold("h", ScopeGroup, "sales")}, days(2),
			Verdict{Policy: "f", Forever: true, HeldBy: []string{"h"}}},
		{"no groups recorded: group policy does not apply", msg(func(r *archive.Record) { r.Groups = nil }), []Policy{keep("p", ScopeGroup, "sales", 1)}, nil, days(2),
			Verdict{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.rec, tt.policies, tt.holds, tt.now)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}
