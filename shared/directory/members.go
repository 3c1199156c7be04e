package directory

import (
	"context"
	"slices"
	"sync"

	"github.com/mailroom/mailroom/shared/fault"
)

// Members lists one page of a group's members: to admins, auditors and the group's owners.
func (s *Service) Members(ctx context.Context, c Call, id string, p Page) ([]Member, string, error) {
	const op = "directory.Members"
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	if _, err := s.readGroup(ctx, op, c.Principal, id, false); err != nil {
		return nil, "", err
	}
	return s.Store.Members(ctx, id, page(p))
}

// AddMember adds a member to a group. Admins, and the group's owners; an owner adds a nested group
// only if they own that one too, since its members would receive the group's mail. Adding a
// member that is already there changes nothing and reports added false.
func (s *Service) AddMember(ctx context.Context, c Call, id string, m Member) (Member, bool, error) {
	const op = "directory.AddMember"
	if err := normalizeMember(op, &m); err != nil {
		return Member{}, false, err
	}
	var added bool
	err := retry(op, func() error {
		g, err := s.readGroup(ctx, op, c.Principal, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "group:"+id, g.Version); err != nil {
			return err
		}
		var graph int64
		switch m.Kind {
		case KindMailbox:
			mb, err := s.mailboxRef(ctx, op, "address", m.Address)
			if err != nil {
				return err
			}
			m = mailboxMember(mb)
		case KindExternal:
			served, err := s.isServed(ctx, m.Address)
			if err != nil {
				return err
			}
			if served {
				return fault.InvalidField(op, "address", "%s is on a Mailroom domain; add its mailbox or group instead", m.Address)
			}
		case KindGroup:
			if _, err := s.readGroup(ctx, op, c.Principal, m.Group, true); err != nil {
				if fault.Is(err, fault.NotFound) {
					return fault.InvalidField(op, "group", "no group %s", m.Group)
				}
				return err
			}
			if graph, err = s.Store.GraphVersion(ctx); err != nil {
				return err
			}
			if cycle, err := s.cycle(ctx, id, m.Group); err != nil {
				return err
			} else if cycle != nil {
				return &fault.Error{Kind: fault.Conflict, Op: op,
					Message: "adding " + m.Group + " to " + id + " would make a cycle: " + joinPath(cycle),
					Details: map[string]any{"cycle": cycle}}
			}
		}
		if _, err := s.Store.Member(ctx, id, m.Ref()); err == nil {
			added = false
			return nil
		} else if !fault.Is(err, fault.NotFound) {
			return err
		}
		after := g
		after.MemberCount++
		stamp(&after.Meta, g.Meta, s.now())
		ms := []Mutation{PutGroup{Group: after, Expect: g.Version}, PutMember{Group: id, Member: m}}
		if m.Kind == KindGroup {
			ms = append(ms, BumpGraph{Expect: graph})
		}
		added = true
		return s.commit(ctx, c, op, "group.add-member", "group:"+id, nil, m, ms...)
	})
	return m, added, err
}

// RemoveMember removes a member ("mailbox:…", "external:…", "group:…") from a group. Admins and
// the group's owners.
func (s *Service) RemoveMember(ctx context.Context, c Call, id, ref string) error {
	const op = "directory.RemoveMember"
	m, err := ParseMemberRef(op, ref)
	if err != nil {
		return err
	}
	if _, err := s.readGroup(ctx, op, c.Principal, id, true); err != nil {
		return err
	}
	return retry(op, func() error { return s.removeMember(ctx, c, op, id, m.Ref()) })
}

func (s *Service) removeMember(ctx context.Context, c Call, op, id, ref string) error {
	g, err := s.Store.Group(ctx, id)
	if err != nil {
		return err
	}
	if err := checkVersion(op, c, "group:"+id, g.Version); err != nil {
		return err
	}
	m, err := s.Store.Member(ctx, id, ref)
	if fault.Is(err, fault.NotFound) {
		return fault.New(fault.NotFound, op, "%s is not a member of %s", ref, id)
	}
	if err != nil {
		return err
	}
	after := g
	after.MemberCount = max(0, after.MemberCount-1)
	stamp(&after.Meta, g.Meta, s.now())
	return s.commit(ctx, c, op, "group.remove-member", "group:"+id, m, nil,
		PutGroup{Group: after, Expect: g.Version}, DeleteMember{Group: id, Ref: ref})
}

// cycle returns the path group → member → … → group when member already contains group at any
// depth (so adding member to group would close a cycle), or nil.
func (s *Service) cycle(ctx context.Context, group, member string) ([]string, error) {
	if group == member {
		return []string{group, group}, nil
	}
	parent := map[string]string{member: ""}
	level := []string{member}
	for len(level) > 0 {
		children, err := s.subgroups(ctx, level)
		if err != nil {
			return nil, err
		}
		var next []string
		for _, p := range level {
			for _, child := range children[p] {
				if _, seen := parent[child]; seen {
					continue
				}
				parent[child] = p
				if child == group {
					var back []string // group, …, member: the existing path, walked backwards
					for n := group; n != ""; n = parent[n] {
						back = append(back, n)
					}
					slices.Reverse(back)
					return append([]string{group}, back...), nil
				}
				next = append(next, child)
			}
		}
		level = next
	}
	return nil, nil
}

// subgroups reads the group members of each group in ids, concurrently.
func (s *Service) subgroups(ctx context.Context, ids []string) (map[string][]string, error) {
	members, err := s.allMembers(ctx, ids, KindGroup)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(ids))
	for id, ms := range members {
		for _, m := range ms {
			out[id] = append(out[id], m.Group)
		}
	}
	return out, nil
}

// fanOut bounds the concurrent reads of one expansion level.
const fanOut = 16

// allMembers reads the members of several groups concurrently.
func (s *Service) allMembers(ctx context.Context, ids []string, kind string) (map[string][]Member, error) {
	out := make(map[string][]Member, len(ids))
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	sem := make(chan struct{}, fanOut)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ms, err := s.Store.AllMembers(ctx, id, kind)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !fault.Is(err, fault.NotFound) {
				if first == nil {
					first = err
				}
				return
			}
			out[id] = ms
		}()
	}
	wg.Wait()
	return out, first
}

// Expand returns a group's final addresses through nested groups at any depth: each active
// mailbox's forwarding destinations (or the mailbox itself when it has none) and every external
// address, deduplicated and sorted. It reads one level of the tree at a time, every group of a
// level concurrently, so its requests grow with the groups, not with the members. Admins,
// auditors and the group's owners.
func (s *Service) Expand(ctx context.Context, c Call, id string) (Expansion, error) {
	const op = "directory.Expand"
	if _, err := s.readGroup(ctx, op, c.Principal, id, false); err != nil {
		return Expansion{}, err
	}
	return s.ExpandGroup(ctx, id)
}

// ExpandGroup is Expand without the caller check, for routing.
func (s *Service) ExpandGroup(ctx context.Context, id string) (Expansion, error) {
	seen := map[string]bool{id: true}
	addrs := map[string]bool{}
	skipped := map[string]string{}
	level := []string{id}
	for len(level) > 0 {
		members, err := s.allMembers(ctx, level, "")
		if err != nil {
			return Expansion{}, err
		}
		var next []string
		for _, g := range level {
			for _, m := range members[g] {
				switch m.Kind {
				case KindGroup:
					if !seen[m.Group] {
						seen[m.Group] = true
						next = append(next, m.Group)
					}
				case KindExternal:
					addrs[m.Address] = true
				case KindMailbox:
					if m.Status != "" && m.Status != StatusActive {
						skipped[m.Address] = m.Status
						continue
					}
					if len(m.ForwardTo) == 0 {
						addrs[m.Address] = true
					}
					for _, f := range m.ForwardTo {
						addrs[f] = true
					}
				}
			}
		}
		level = next
	}
	e := Expansion{Group: id, Addresses: sortedKeys(addrs), Groups: sortedKeys(seen), Skipped: []Skipped{}}
	for _, a := range sortedKeys(skippedSet(skipped)) {
		if !addrs[a] {
			e.Skipped = append(e.Skipped, Skipped{Address: a, Reason: skipped[a]})
		}
	}
	return e, nil
}

func skippedSet(m map[string]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func joinPath(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += " → "
		}
		out += s
	}
	return out
}
