package directory

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/mailroom/mailroom/shared/fault"
)

// CreateMailbox adds a mailbox on a served domain. Admins only.
func (s *Service) CreateMailbox(ctx context.Context, c Call, m Mailbox) (Mailbox, error) {
	const op = "directory.CreateMailbox"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Mailbox{}, err
	}
	if err := normalizeMailbox(op, &m); err != nil {
		return Mailbox{}, err
	}
	if err := s.checkMailboxRefs(ctx, op, m); err != nil {
		return Mailbox{}, err
	}
	stamp(&m.Meta, Meta{}, s.now())
	err := s.commit(ctx, c, op, "mailbox.create", "mailbox:"+m.Address, nil, m,
		PutMailbox{Mailbox: m}, ClaimAddress{Address: m.Address, Owner: Owner{Kind: KindMailbox, ID: m.Address}})
	return m, err
}

func (s *Service) checkMailboxRefs(ctx context.Context, op string, m Mailbox) error {
	if err := s.served(ctx, op, "address", m.Address); err != nil {
		return err
	}
	if m.Manager != "" {
		if _, err := s.mailboxRef(ctx, op, "manager", m.Manager); err != nil {
			return err
		}
	}
	return nil
}

// Mailbox returns one mailbox: to admins and auditors, to its owner, and to the managers of a group
// it is a member of.
func (s *Service) Mailbox(ctx context.Context, c Call, address string) (Mailbox, error) {
	const op = "directory.Mailbox"
	p := c.Principal
	addr, err := NormalizeAddress(address)
	if err != nil {
		if p.readsAll() {
			return Mailbox{}, fault.New(fault.NotFound, op, "no mailbox %s", address)
		}
		return Mailbox{}, forbidden(op)
	}
	switch {
	case p.readsAll():
		if err := p.scoped(op, false); err != nil {
			return Mailbox{}, err
		}
	case p.Has(RoleEmployee) && p.Email == addr:
		if err := p.scoped(op, false); err != nil {
			return Mailbox{}, err
		}
	case p.Has(RoleGroupManager):
		ok, err := s.managesMember(ctx, p, "mailbox:"+addr)
		if err != nil {
			return Mailbox{}, err
		}
		if !ok {
			return Mailbox{}, forbidden(op)
		}
		if err := p.scoped(op, false); err != nil {
			return Mailbox{}, err
		}
	default:
		return Mailbox{}, forbidden(op)
	}
	return s.Store.Mailbox(ctx, addr)
}

// managesMember reports whether p owns a group that has ref as a direct member.
func (s *Service) managesMember(ctx context.Context, p Principal, ref string) (bool, error) {
	if p.Email == "" {
		return false, nil
	}
	refs, err := s.Store.Referrers(ctx, ref)
	if err != nil {
		return false, err
	}
	for _, r := range refs {
		id, ok := strings.CutPrefix(r, KindGroup+":")
		if !ok {
			continue
		}
		g, err := s.Store.Group(ctx, id)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if slices.Contains(g.Owners, p.Email) {
			return true, nil
		}
	}
	return false, nil
}

// Mailboxes lists the mailboxes. Admins and auditors.
func (s *Service) Mailboxes(ctx context.Context, c Call, p Page) ([]Mailbox, string, error) {
	const op = "directory.Mailboxes"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return nil, "", err
	}
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	return s.Store.Mailboxes(ctx, page(p))
}

// employeeFields are what employees may change on their own mailbox.
var employeeFields = []string{"displayName", "locale", "timeZone"}

// UpdateMailbox applies a merge patch to a mailbox. Admins change anything but the address;
// employees change their own mailbox's display name, locale and time zone. A change of status or
// forwarding is copied to the mailbox's memberships, which group expansion reads.
func (s *Service) UpdateMailbox(ctx context.Context, c Call, address string, patch []byte) (Mailbox, error) {
	const op = "directory.UpdateMailbox"
	p := c.Principal
	addr, _ := NormalizeAddress(address)
	admin := p.Has(RoleAdmin)
	if !admin && !(p.Has(RoleEmployee) && addr != "" && p.Email == addr) {
		return Mailbox{}, forbidden(op)
	}
	if err := p.scoped(op, true); err != nil {
		return Mailbox{}, err
	}
	var out Mailbox
	err := retry(op, func() error {
		before, err := s.Store.Mailbox(ctx, addr)
		if err != nil {
			if addr == "" {
				return fault.New(fault.NotFound, op, "no mailbox %s", address)
			}
			return err
		}
		if err := checkVersion(op, c, "mailbox:"+addr, before.Version); err != nil {
			return err
		}
		after := before
		if err := applyPatch(op, before, patch, &after); err != nil {
			return err
		}
		if err := normalizeMailbox(op, &after); err != nil {
			return err
		}
		if after.Address != before.Address {
			return fault.InvalidField(op, "address", "a mailbox's address cannot change; create a new mailbox and an alias")
		}
		if !admin {
			if f := changedField(before, after, employeeFields); f != "" {
				return fault.New(fault.Forbidden, op, "employees may change only %s; not %s", strings.Join(employeeFields, ", "), f)
			}
		}
		if after.Manager != before.Manager {
			if err := s.checkMailboxRefs(ctx, op, after); err != nil {
				return err
			}
		}
		stamp(&after.Meta, before.Meta, s.now())
		out = after
		return s.commit(ctx, c, op, "mailbox.update", "mailbox:"+addr, before, after,
			PutMailbox{Mailbox: after, Expect: before.Version})
	})
	if err != nil {
		return Mailbox{}, err
	}
	// Memberships carry a copy of the mailbox's status and forwarding, for group expansion. They
	// are rewritten after the change, one at a time, so a mailbox in any number of groups can be
	// closed. A patch that names status or forwardTo always rewrites them, so repeating it repairs
	// copies an interrupted update left behind.
	if mentions(patch, "status", "forwardTo") {
		if err := s.refreshMemberships(ctx, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// mentions reports whether a merge patch names any of the fields.
func mentions(patch []byte, fields ...string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(patch, &m) != nil {
		return false
	}
	for _, f := range fields {
		if _, ok := m[f]; ok {
			return true
		}
	}
	return false
}

// refreshMemberships rewrites each of a mailbox's memberships with its current status and
// forwarding. A membership removed meanwhile stays removed: the rewrite requires it to exist.
func (s *Service) refreshMemberships(ctx context.Context, m Mailbox) error {
	refs, err := s.Store.Referrers(ctx, "mailbox:"+m.Address)
	if err != nil {
		return err
	}
	for _, r := range refs {
		id, ok := strings.CutPrefix(r, KindGroup+":")
		if !ok {
			continue
		}
		err := s.Store.Apply(ctx, RefreshMember{Group: id, Member: mailboxMember(m)})
		if err != nil && !fault.Is(err, fault.Conflict) {
			return err
		}
	}
	return nil
}

func mailboxMember(m Mailbox) Member {
	return Member{Kind: KindMailbox, Address: m.Address, Status: m.Status, ForwardTo: m.ForwardTo}
}

// changedField returns the first field outside allowed whose JSON differs between a and b.
func changedField[T any](a, b T, allowed []string) string {
	var am, bm map[string]any
	_ = Decode("", marshal(a), &am)
	_ = Decode("", marshal(b), &bm)
	keys := make([]string, 0, len(am)+len(bm))
	for k := range am {
		keys = append(keys, k)
	}
	for k := range bm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(allowed, k) || slices.Contains(readOnlyFields, k) {
			continue
		}
		if string(marshal(am[k])) != string(marshal(bm[k])) {
			return k
		}
	}
	return ""
}

// readOnlyFields are set by Mailroom, never by callers.
var readOnlyFields = []string{"version", "createdAt", "updatedAt", "unicodeName", "targetKind", "memberCount"}

// DeleteMailbox removes a mailbox and its memberships. It is refused while aliases point at it;
// closing a mailbox (status closed) is the usual way out. Admins only.
func (s *Service) DeleteMailbox(ctx context.Context, c Call, address string) error {
	const op = "directory.DeleteMailbox"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return err
	}
	addr, err := NormalizeAddress(address)
	if err != nil {
		return fault.New(fault.NotFound, op, "no mailbox %s", address)
	}
	return retry(op, func() error {
		before, err := s.Store.Mailbox(ctx, addr)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "mailbox:"+addr, before.Version); err != nil {
			return err
		}
		ref := "mailbox:" + addr
		if err := s.refuseAliases(ctx, op, ref); err != nil {
			return err
		}
		if err := s.leaveGroups(ctx, c, op, ref); err != nil {
			return err
		}
		return s.commit(ctx, c, op, "mailbox.delete", ref, before, nil,
			DeleteMailbox{Address: addr, Expect: before.Version}, ReleaseAddress{Address: addr})
	})
}

// refuseAliases refuses to delete something aliases point at: deleting them silently would make
// addresses people use stop working.
func (s *Service) refuseAliases(ctx context.Context, op, ref string) error {
	refs, err := s.Store.Referrers(ctx, ref)
	if err != nil {
		return err
	}
	var aliases []string
	for _, r := range refs {
		if a, ok := strings.CutPrefix(r, KindAlias+":"); ok {
			aliases = append(aliases, a)
		}
	}
	if len(aliases) > 0 {
		return &fault.Error{Kind: fault.Conflict, Op: op,
			Message: "aliases point at it: " + strings.Join(aliases, ", ") + "; delete or repoint them first",
			Details: map[string]any{"aliases": aliases}}
	}
	return nil
}

// leaveGroups removes ref from every group it is a member of, one audited change per group.
func (s *Service) leaveGroups(ctx context.Context, c Call, op, ref string) error {
	refs, err := s.Store.Referrers(ctx, ref)
	if err != nil {
		return err
	}
	inner := c.internal()
	for _, r := range refs {
		id, ok := strings.CutPrefix(r, KindGroup+":")
		if !ok {
			continue
		}
		err := retry(op, func() error { return s.removeMember(ctx, inner, op, id, ref) })
		if err != nil && !fault.Is(err, fault.NotFound) {
			return err
		}
	}
	return nil
}
