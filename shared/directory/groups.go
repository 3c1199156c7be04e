package directory

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/mailroom/mailroom/shared/fault"
)

// CreateGroup adds a group with its addresses and owners; members are added afterwards. Admins
// only.
func (s *Service) CreateGroup(ctx context.Context, c Call, g Group) (Group, error) {
	const op = "directory.CreateGroup"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Group{}, err
	}
	if err := normalizeGroup(op, &g); err != nil {
		return Group{}, err
	}
	if err := s.checkGroupRefs(ctx, op, g, Group{}); err != nil {
		return Group{}, err
	}
	g.MemberCount = 0
	stamp(&g.Meta, Meta{}, s.now())
	ms := []Mutation{PutGroup{Group: g}}
	ms = append(ms, groupIndexes(g, Group{})...)
	err := s.commit(ctx, c, op, "group.create", "group:"+g.ID, nil, g, ms...)
	return g, err
}

// checkGroupRefs checks what a group's new addresses, owners and moderators refer to.
func (s *Service) checkGroupRefs(ctx context.Context, op string, g, before Group) error {
	for i, a := range g.Addresses {
		if slices.Contains(before.Addresses, a) {
			continue
		}
		if err := s.served(ctx, op, fieldIndex("addresses", i), a); err != nil {
			return err
		}
	}
	if err := s.mailboxRefs(ctx, op, "owners", diff(before.Owners, g.Owners)); err != nil {
		return err
	}
	return s.mailboxRefs(ctx, op, "posting.moderators", diff(before.Posting.Moderators, g.Posting.Moderators))
}

// groupIndexes claims a group's new addresses, releases its old ones, and keeps the owner index.
func groupIndexes(g, before Group) []Mutation {
	var ms []Mutation
	for _, a := range diff(before.Addresses, g.Addresses) {
		ms = append(ms, ClaimAddress{Address: a, Owner: Owner{Kind: KindGroup, ID: g.ID}})
	}
	for _, a := range diff(g.Addresses, before.Addresses) {
		ms = append(ms, ReleaseAddress{Address: a})
	}
	for _, o := range diff(before.Owners, g.Owners) {
		ms = append(ms, PutOwner{Group: g.ID, Owner: o})
	}
	for _, o := range diff(g.Owners, before.Owners) {
		ms = append(ms, DeleteOwner{Group: g.ID, Owner: o})
	}
	return ms
}

// readGroup returns a group the principal may read: any group for admins and auditors, their own
// for group managers. Others get Forbidden whether or not the group exists, so that the answer does
// not tell them which groups exist.
func (s *Service) readGroup(ctx context.Context, op string, p Principal, id string, write bool) (Group, error) {
	var all bool
	switch {
	case p.Has(RoleAdmin):
		all = true
	case p.Has(RoleAuditor) && !write:
		all = true
	case p.Has(RoleGroupManager):
	default:
		return Group{}, forbidden(op)
	}
	if err := p.scoped(op, write); err != nil {
		return Group{}, err
	}
	g, err := s.Store.Group(ctx, id)
	if err != nil {
		if fault.Is(err, fault.NotFound) && !all {
			return Group{}, forbidden(op)
		}
		return Group{}, err
	}
	if !all && !(p.Email != "" && slices.Contains(g.Owners, p.Email)) {
		return Group{}, forbidden(op)
	}
	return g, nil
}

// Group returns one group: to admins and auditors, and to its owners.
func (s *Service) Group(ctx context.Context, c Call, id string) (Group, error) {
	return s.readGroup(ctx, "directory.Group", c.Principal, id, false)
}

// Groups lists the groups: all of them to admins and auditors, their own to group managers.
func (s *Service) Groups(ctx context.Context, c Call, p Page) ([]Group, string, error) {
	const op = "directory.Groups"
	pr := c.Principal
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	if pr.readsAll() {
		if err := pr.scoped(op, false); err != nil {
			return nil, "", err
		}
		return s.Store.Groups(ctx, page(p))
	}
	if err := pr.allow(op, false, RoleGroupManager); err != nil {
		return nil, "", err
	}
	if pr.Email == "" {
		return []Group{}, "", nil
	}
	return s.Store.OwnedGroups(ctx, pr.Email, page(p))
}

// managerFields are what a group's owners may change themselves; id, type, addresses, owners and
// expiry change what the organisation's mail does and stay with admins.
var managerFields = []string{"name", "description", "posting"}

// UpdateGroup applies a merge patch to a group: admins change anything but the id, owners change
// the name, description and posting policy.
func (s *Service) UpdateGroup(ctx context.Context, c Call, id string, patch []byte) (Group, error) {
	const op = "directory.UpdateGroup"
	var out Group
	err := retry(op, func() error {
		before, err := s.readGroup(ctx, op, c.Principal, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "group:"+id, before.Version); err != nil {
			return err
		}
		after := before
		if err := applyPatch(op, before, patch, &after); err != nil {
			return err
		}
		if err := normalizeGroup(op, &after); err != nil {
			return err
		}
		if after.ID != before.ID {
			return fault.InvalidField(op, "id", "a group's id cannot change")
		}
		if !c.Principal.Has(RoleAdmin) {
			if f := changedField(before, after, managerFields); f != "" {
				return fault.New(fault.Forbidden, op, "group owners may change only %s; not %s", strings.Join(managerFields, ", "), f)
			}
		}
		if err := s.checkGroupRefs(ctx, op, after, before); err != nil {
			return err
		}
		after.MemberCount = before.MemberCount
		stamp(&after.Meta, before.Meta, s.now())
		out = after
		ms := []Mutation{PutGroup{Group: after, Expect: before.Version}}
		ms = append(ms, groupIndexes(after, before)...)
		return s.commit(ctx, c, op, "group.update", "group:"+id, before, after, ms...)
	})
	return out, err
}

// DeleteGroup removes a group: first from the groups it is a member of, then its members, then the
// group with its addresses. It is refused while aliases point at it. A delete cut short (a timeout)
// leaves a smaller group that a repeated delete finishes. Admins only.
func (s *Service) DeleteGroup(ctx context.Context, c Call, id string) error {
	const op = "directory.DeleteGroup"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return err
	}
	before, err := s.Store.Group(ctx, id)
	if err != nil {
		return err
	}
	if err := checkVersion(op, c, "group:"+id, before.Version); err != nil {
		return err
	}
	ref := KindGroup + ":" + id
	if err := s.refuseAliases(ctx, op, ref); err != nil {
		return err
	}
	if err := s.leaveGroups(ctx, c, op, ref); err != nil {
		return err
	}
	members, err := s.Store.AllMembers(ctx, id, "")
	if err != nil {
		return err
	}
	// Memberships go without an audit entry each; the group's own entry records how many there were.
	for chunk := range slices.Chunk(members, MaxMutations) {
		ms := make([]Mutation, 0, len(chunk))
		for _, m := range chunk {
			ms = append(ms, DeleteMember{Group: id, Ref: m.Ref()})
		}
		if err := s.Store.Apply(ctx, ms...); err != nil {
			return err
		}
	}
	return retry(op, func() error {
		before, err := s.Store.Group(ctx, id)
		if err != nil {
			return err
		}
		ms := []Mutation{DeleteGroup{ID: id, Expect: before.Version}}
		for _, a := range before.Addresses {
			ms = append(ms, ReleaseAddress{Address: a})
		}
		for _, o := range before.Owners {
			ms = append(ms, DeleteOwner{Group: id, Owner: o})
		}
		return s.commit(ctx, c.internal(), op, "group.delete", ref, before, nil, ms...)
	})
}

func fieldIndex(field string, i int) string { return field + "." + strconv.Itoa(i) }
