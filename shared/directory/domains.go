package directory

import (
	"context"

	"github.com/mailroom/mailroom/shared/fault"
)

// CreateDomain adds a domain Mailroom serves. Admins only.
func (s *Service) CreateDomain(ctx context.Context, c Call, d Domain) (Domain, error) {
	const op = "directory.CreateDomain"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Domain{}, err
	}
	if err := normalizeDomain(op, &d); err != nil {
		return Domain{}, err
	}
	if err := s.checkCatchAll(ctx, op, d, true); err != nil {
		return Domain{}, err
	}
	stamp(&d.Meta, Meta{}, s.now())
	err := s.commit(ctx, c, op, "domain.create", "domain:"+d.Name, nil, d, PutDomain{Domain: d})
	return d, err
}

// checkCatchAll requires a catch-all address on a served domain to belong to someone, so that
// unknown recipients are never caught by an address that is itself unknown.
func (s *Service) checkCatchAll(ctx context.Context, op string, d Domain, creating bool) error {
	if d.CatchAll == "" {
		return nil
	}
	if DomainOf(d.CatchAll) == d.Name {
		if creating {
			return fault.InvalidField(op, "catchAll", "create the domain first, then the catch-all mailbox or group, then set catchAll")
		}
	} else if ok, err := s.isServed(ctx, d.CatchAll); err != nil || !ok {
		return err
	}
	_, err := s.Store.AddressOwner(ctx, d.CatchAll)
	if fault.Is(err, fault.NotFound) {
		return fault.InvalidField(op, "catchAll", "%s is not a mailbox, alias or group address", d.CatchAll)
	}
	return err
}

// Domain returns one domain. Admins and auditors.
func (s *Service) Domain(ctx context.Context, c Call, name string) (Domain, error) {
	const op = "directory.Domain"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return Domain{}, err
	}
	return s.findDomain(ctx, op, name)
}

// findDomain reads a domain by any spelling of its name. It checks no access: changes read what
// they change without needing the read scope.
func (s *Service) findDomain(ctx context.Context, op, name string) (Domain, error) {
	ascii, _, err := NormalizeDomain(name)
	if err != nil {
		return Domain{}, fault.New(fault.NotFound, op, "no domain %s", name)
	}
	return s.Store.Domain(ctx, ascii)
}

// Domains lists the domains. Admins and auditors.
func (s *Service) Domains(ctx context.Context, c Call, p Page) ([]Domain, string, error) {
	const op = "directory.Domains"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return nil, "", err
	}
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	return s.Store.Domains(ctx, page(p))
}

// UpdateDomain applies a merge patch to a domain. Admins only.
func (s *Service) UpdateDomain(ctx context.Context, c Call, name string, patch []byte) (Domain, error) {
	const op = "directory.UpdateDomain"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return Domain{}, err
	}
	var out Domain
	err := retry(op, func() error {
		before, err := s.findDomain(ctx, op, name)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "domain:"+before.Name, before.Version); err != nil {
			return err
		}
		after := before
		if err := applyPatch(op, before, patch, &after); err != nil {
			return err
		}
		if err := normalizeDomain(op, &after); err != nil {
			return err
		}
		if after.Name != before.Name {
			return fault.InvalidField(op, "name", "a domain's name cannot change")
		}
		if err := s.checkCatchAll(ctx, op, after, false); err != nil {
			return err
		}
		stamp(&after.Meta, before.Meta, s.now())
		out = after
		return s.commit(ctx, c, op, "domain.update", "domain:"+after.Name, before, after,
			PutDomain{Domain: after, Expect: before.Version})
	})
	return out, err
}

// DeleteDomain removes a domain nothing is using any more. Admins only.
func (s *Service) DeleteDomain(ctx context.Context, c Call, name string) error {
	const op = "directory.DeleteDomain"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return err
	}
	return retry(op, func() error {
		before, err := s.findDomain(ctx, op, name)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, "domain:"+before.Name, before.Version); err != nil {
			return err
		}
		inUse, err := s.Store.DomainInUse(ctx, before.Name)
		if err != nil {
			return err
		}
		if inUse {
			return fault.New(fault.Conflict, op, "%s still has mailboxes, aliases or group addresses; remove them first", before.Name)
		}
		return s.commit(ctx, c, op, "domain.delete", "domain:"+before.Name, before, nil,
			DeleteDomain{Name: before.Name, Expect: before.Version})
	})
}

// applyPatch merges patch into the JSON of before and decodes the result strictly into after.
// Read-only fields in the patch are ignored: the service sets them.
func applyPatch[T any](op string, before T, patch []byte, after *T) error {
	merged, err := MergePatch(op, marshal(before), patch)
	if err != nil {
		return err
	}
	var zero T
	*after = zero
	return Decode(op, merged, after)
}
