package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
)

// BenchmarkExpandGroupTree expands group trees five levels deep against DynamoDB Local. The shapes
// show what the request count follows: the same 10,000 members cost about as many requests as
// there are groups holding them, whether 5 or 341; 341 groups cost the same with 1,000 members as
// with 10,000.
func BenchmarkExpandGroupTree(b *testing.B) {
	for _, shape := range []struct {
		name    string
		fanOut  int // children per group; 1 makes a chain
		members int // spread over the leaves
	}{
		{"chain-5-groups-10000-members", 1, 10000},
		{"tree-341-groups-1000-members", 4, 1000},
		{"tree-341-groups-10000-members", 4, 10000},
	} {
		b.Run(shape.name, func(b *testing.B) {
			ctx := context.Background()
			counter := &awsclient.RequestCounter{}
			d := newDirectory(b, counter)
			groups, leaves := buildTree(b, d, shape.fanOut, 5)
			spreadMembers(b, d, leaves, shape.members)
			svc := &directory.Service{Store: d, Audit: d}

			var requests int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				before := counter.Count()
				e, err := svc.ExpandGroup(ctx, "g")
				if err != nil {
					b.Fatal(err)
				}
				if len(e.Addresses) != shape.members || len(e.Groups) != groups {
					b.Fatalf("expanded %d addresses in %d groups, want %d in %d", len(e.Addresses), len(e.Groups), shape.members, groups)
				}
				requests += counter.Count() - before
			}
			b.ReportMetric(float64(requests)/float64(b.N), "aws-req/expansion")
			b.ReportMetric(float64(groups), "groups")
		})
	}
}

// buildTree makes a tree of groups depth levels deep under the root "g" and returns the number of
// groups and the ids of the leaves.
func buildTree(b *testing.B, d *dynamo.Directory, fanOut, depth int) (int, []string) {
	b.Helper()
	put := func(id string) {
		apply(b, d, directory.PutGroup{Group: directory.Group{ID: id, Name: id, Type: "other",
			Posting: directory.Posting{Policy: directory.PostAnyone}, Meta: directory.Meta{Version: 1}}})
	}
	put("g")
	level, groups := []string{"g"}, 1
	for range depth - 1 {
		var next []string
		var ms []directory.Mutation
		for _, p := range level {
			for i := range fanOut {
				id := fmt.Sprintf("%s-%d", p, i)
				put(id)
				ms = append(ms, directory.PutMember{Group: p, Member: directory.Member{Kind: directory.KindGroup, Group: id}})
				next = append(next, id)
				groups++
			}
		}
		for len(ms) > 0 {
			n := min(len(ms), directory.MaxMutations)
			apply(b, d, ms[:n]...)
			ms = ms[n:]
		}
		level = next
	}
	return groups, level
}

// spreadMembers puts n active mailbox members with one forwarding address each over the leaves.
func spreadMembers(b *testing.B, d *dynamo.Directory, leaves []string, n int) {
	b.Helper()
	var ms []directory.Mutation
	for i := range n {
		addr := fmt.Sprintf("person%05d@example.com", i)
		ms = append(ms, directory.PutMember{Group: leaves[i%len(leaves)], Member: directory.Member{
			Kind: directory.KindMailbox, Address: addr, Status: directory.StatusActive,
			ForwardTo: []string{fmt.Sprintf("person%05d@corp.example", i)},
		}})
		if len(ms) == directory.MaxMutations || i == n-1 {
			apply(b, d, ms...)
			ms = ms[:0]
		}
	}
}
