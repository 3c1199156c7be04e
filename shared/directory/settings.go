package directory

import (
	"context"
	"encoding/json"

	"github.com/mailroom/mailroom/shared/fault"
)

// SettingKind describes one kind of setting to the service: the capability that owns it
// validates bodies; the directory stores, versions and audits them. Admins change settings and
// admins and auditors read them, unless the kind says otherwise.
type SettingKind struct {
	// Kind names the kind in keys and audit entries ("routing-rule").
	Kind string
	// Validate checks a body for the setting id and returns it normalised (the id filled in,
	// defaults applied), or a fault of kind Invalid naming the field.
	Validate func(ctx context.Context, id string, body []byte) ([]byte, error)
	// Present is the setting as its owner shows it (in the audit log and in answers); the body
	// when nil.
	Present func(Setting) any
	// Access decides who reads (write false) or changes (write true) the setting id, returning
	// a Forbidden fault to refuse; nil leaves it to admins (and auditors, to read). Listing every
	// setting of a kind stays with admins and auditors whatever Access says.
	Access func(ctx context.Context, p Principal, op, id string, write bool) error
}

func (k SettingKind) access(ctx context.Context, p Principal, op, id string, write bool) error {
	if k.Access != nil {
		return k.Access(ctx, p, op, id, write)
	}
	if write {
		return p.allow(op, true, RoleAdmin)
	}
	return p.allow(op, false, RoleAdmin, RoleAuditor)
}

// PresentAs is a SettingKind's Present for a capability that reads its settings with read: the
// setting as its typed value, or its raw body when that no longer reads.
func PresentAs[T any](read func(Setting) (T, error)) func(Setting) any {
	return func(s Setting) any {
		v, err := read(s)
		if err != nil {
			return json.RawMessage(s.Body)
		}
		return v
	}
}

func (k SettingKind) present(s Setting) any {
	if k.Present != nil {
		return k.Present(s)
	}
	return json.RawMessage(s.Body)
}

func (s *Service) settings(op string) (SettingStore, error) {
	ss, ok := s.Store.(SettingStore)
	if !ok {
		return nil, fault.New(fault.Internal, op, "the directory store keeps no settings")
	}
	return ss, nil
}

// Settings lists every setting of a kind and the kind's version.
func (s *Service) Settings(ctx context.Context, c Call, k SettingKind) ([]Setting, int64, error) {
	const op = "directory.Settings"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return nil, 0, err
	}
	ss, err := s.settings(op)
	if err != nil {
		return nil, 0, err
	}
	return ss.Settings(ctx, k.Kind)
}

// Setting reads one setting.
func (s *Service) Setting(ctx context.Context, c Call, k SettingKind, id string) (Setting, error) {
	const op = "directory.Setting"
	if err := k.access(ctx, c.Principal, op, id, false); err != nil {
		return Setting{}, err
	}
	ss, err := s.settings(op)
	if err != nil {
		return Setting{}, err
	}
	return ss.Setting(ctx, k.Kind, id)
}

// CreateSetting adds a setting; the id must be new.
func (s *Service) CreateSetting(ctx context.Context, c Call, k SettingKind, id string, body []byte) (Setting, error) {
	const op = "directory.CreateSetting"
	if err := k.access(ctx, c.Principal, op, id, true); err != nil {
		return Setting{}, err
	}
	ss, err := s.settings(op)
	if err != nil {
		return Setting{}, err
	}
	var out Setting
	err = retry(op, func() error {
		switch _, err := ss.Setting(ctx, k.Kind, id); {
		case err == nil:
			return fault.New(fault.Conflict, op, "%s %s already exists", k.Kind, id)
		case !fault.Is(err, fault.NotFound):
			return err
		}
		out, err = s.writeSetting(ctx, c, op, k, id, body, Setting{}, "create")
		return err
	})
	return out, err
}

// PutSetting creates a setting or replaces the whole of it: for settings that belong to one
// thing (a mailbox's out-of-office reply), where the id is known and there is one of it.
func (s *Service) PutSetting(ctx context.Context, c Call, k SettingKind, id string, body []byte) (Setting, error) {
	const op = "directory.PutSetting"
	if err := k.access(ctx, c.Principal, op, id, true); err != nil {
		return Setting{}, err
	}
	ss, err := s.settings(op)
	if err != nil {
		return Setting{}, err
	}
	var out Setting
	err = retry(op, func() error {
		before, err := ss.Setting(ctx, k.Kind, id)
		verb := "update"
		switch {
		case fault.Is(err, fault.NotFound):
			before, verb = Setting{}, "create"
		case err != nil:
			return err
		}
		if err := checkVersion(op, c, k.Kind+":"+id, before.Version); err != nil {
			return err
		}
		out, err = s.writeSetting(ctx, c, op, k, id, body, before, verb)
		return err
	})
	return out, err
}

// UpdateSetting applies a JSON merge patch to a setting.
func (s *Service) UpdateSetting(ctx context.Context, c Call, k SettingKind, id string, patch []byte) (Setting, error) {
	const op = "directory.UpdateSetting"
	if err := k.access(ctx, c.Principal, op, id, true); err != nil {
		return Setting{}, err
	}
	ss, err := s.settings(op)
	if err != nil {
		return Setting{}, err
	}
	var out Setting
	err = retry(op, func() error {
		before, err := ss.Setting(ctx, k.Kind, id)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, k.Kind+":"+id, before.Version); err != nil {
			return err
		}
		body, err := MergePatch(op, before.Body, patch)
		if err != nil {
			return err
		}
		out, err = s.writeSetting(ctx, c, op, k, id, body, before, "update")
		return err
	})
	return out, err
}

// DeleteSetting removes a setting.
func (s *Service) DeleteSetting(ctx context.Context, c Call, k SettingKind, id string) error {
	const op = "directory.DeleteSetting"
	if err := k.access(ctx, c.Principal, op, id, true); err != nil {
		return err
	}
	ss, err := s.settings(op)
	if err != nil {
		return err
	}
	return retry(op, func() error {
		before, err := ss.Setting(ctx, k.Kind, id)
		if err != nil {
			return err
		}
		if err := checkVersion(op, c, k.Kind+":"+id, before.Version); err != nil {
			return err
		}
		_, version, err := ss.Settings(ctx, k.Kind)
		if err != nil {
			return err
		}
		return s.commit(ctx, c, op, k.Kind+".delete", k.Kind+":"+id, k.present(before), nil,
			DeleteSetting{Kind: k.Kind, ID: id, Expect: before.Version},
			BumpSettings{Kind: k.Kind, Expect: version})
	})
}

// writeSetting validates and stores a body, bumping the kind's version in the same write so a
// reader of the whole set sees either all of a change or none of it.
func (s *Service) writeSetting(ctx context.Context, c Call, op string, k SettingKind, id string, body []byte, before Setting, verb string) (Setting, error) {
	ss, err := s.settings(op)
	if err != nil {
		return Setting{}, err
	}
	norm, err := k.Validate(ctx, id, body)
	if err != nil {
		return Setting{}, err
	}
	_, version, err := ss.Settings(ctx, k.Kind)
	if err != nil {
		return Setting{}, err
	}
	out := Setting{Kind: k.Kind, ID: id, Body: norm}
	stamp(&out.Meta, before.Meta, s.now())
	var prior any // nothing before a create: the audit entry has no "before"
	if before.Version != 0 {
		prior = k.present(before)
	}
	err = s.commit(ctx, c, op, k.Kind+"."+verb, k.Kind+":"+id, prior, k.present(out),
		PutSetting{Setting: out, Expect: before.Version},
		BumpSettings{Kind: k.Kind, Expect: version})
	return out, err
}
