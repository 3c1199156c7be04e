package directory

import (
	"context"

	"github.com/mailroom/mailroom/shared/fault"
)

// CreateAlias adds an address for a mailbox or a group. Admins only.
func (s *Service) CreateAlias(ctx context.Context, c Call, a Alias) (Alias, error) {
	const op = "directory.CreateAlias"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Alias{}, err
	}
	if err := normalizeAlias(op, &a); err != nil {
		return Alias{}, err
	}
	if err := s.resolveTarget(ctx, op, &a); err != nil {
		return Alias{}, err
	}
	stamp(&a.Meta, Meta{}, s.now())
	err := s.commit(ctx, c, op, "alias.create", "alias:"+a.Address, nil, a,
		PutAlias{Alias: a}, ClaimAddress{Address: a.Address, Owner: Owner{Kind: KindAlias, ID: a.Address}})
	return a, err
}

// resolveTarget checks the alias's own address is served and finds what its target belongs to.
func (s *Service) resolveTarget(ctx context.Context, op string, a *Alias) error {
	if err := s.served(ctx, op, "address", a.Address); err != nil {
		return err
	}
	owner, err := s.Store.AddressOwner(ctx, a.Target)
	if fault.Is(err, fault.NotFound) {
		return fault.InvalidField(op, "target", "%s is not a mailbox or group address", a.Target)
	}
	if err != nil {
		return err
	}
	if owner.Kind == KindAlias {
		return fault.InvalidField(op, "target", "%s is an alias; point at the mailbox or group it belongs to", a.Target)
	}
	a.TargetKind, a.TargetID = owner.Kind, owner.ID
	return nil
}

// Alias returns one alias. Admins and auditors.
func (s *Service) Alias(ctx context.Context, c Call, address string) (Alias, error) {
	const op = "directory.Alias"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return Alias{}, err
	}
	return s.findAlias(ctx, op, address)
}

// findAlias reads an alias by any spelling of its address. It checks no access: changes read what
// they change without needing the read scope.
func (s *Service) findAlias(ctx context.Context, op, address string) (Alias, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return Alias{}, fault.New(fault.NotFound, op, "no alias %s", address)
	}
	return s.Store.Alias(ctx, addr)
}

// Aliases lists the aliases. Admins and auditors.
func (s *Service) Aliases(ctx context.Context, c Call, p Page) ([]Alias, string, error) {
	const op = "directory.Aliases"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return nil, "", err
	}
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	return s.Store.Aliases(ctx, page(p))
}

// UpdateAlias repoints an alias. Admins only.
func (s *Service) UpdateAlias(ctx context.Context, c Call, address string, patch []byte) (Alias, error) {
	const op = "directory.UpdateAlias"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Alias{}, err
	}
	var out Alias
	err := retry(op, func() error {
		before, err := s.findAlias(ctx, op, address)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "alias:"+before.Address, before.Version); err != nil {
			return err
		}
		after := before
		if err := applyPatch(op, before, patch, &after); err != nil {
			return err
		}
		if err := normalizeAlias(op, &after); err != nil {
			return err
		}
		if after.Address != before.Address {
			return fault.InvalidField(op, "address", "an alias's address cannot change")
		}
		if err := s.resolveTarget(ctx, op, &after); err != nil {
			return err
		}
		stamp(&after.Meta, before.Meta, s.now())
		out = after
		return s.commit(ctx, c, op, "alias.update", "alias:"+after.Address, before, after,
			PutAlias{Alias: after, Expect: before.Version})
	})
	return out, err
}

// DeleteAlias removes an alias and frees its address. Admins only.
func (s *Service) DeleteAlias(ctx context.Context, c Call, address string) error {
	const op = "directory.DeleteAlias"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return err
	}
	return retry(op, func() error {
		before, err := s.findAlias(ctx, op, address)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "alias:"+before.Address, before.Version); err != nil {
			return err
		}
		return s.commit(ctx, c, op, "alias.delete", "alias:"+before.Address, before, nil,
			DeleteAlias{Address: before.Address, Expect: before.Version}, ReleaseAddress{Address: before.Address})
	})
}
