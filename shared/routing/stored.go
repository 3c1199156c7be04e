package routing

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// RuleKind is the directory setting kind routing rules are stored as.
const RuleKind = "routing-rule"

// RuleSetting tells the directory how to validate a routing rule: the rule must be valid and
// every group it forwards to must exist.
func RuleSetting(dir Directory) directory.SettingKind {
	return directory.SettingKind{
		Kind: RuleKind,
		Validate: func(ctx context.Context, id string, body []byte) ([]byte, error) {
			const op = "routing.ValidateRule"
			r, err := DecodeRule(op, body)
			if err != nil {
				return nil, err
			}
			if r.ID != "" && r.ID != id {
				return nil, fault.InvalidField(op, "id", "the id %q differs from the rule's address %q", r.ID, id)
			}
			r.ID = id
			r.Meta = directory.Meta{}
			r, err = ValidateRule(r)
			if err != nil {
				return nil, err
			}
			for i, a := range r.Actions {
				if a.Group == "" {
					continue
				}
				if _, err := dir.Group(ctx, a.Group); fault.Is(err, fault.NotFound) {
					return nil, fault.InvalidField(op, fmt.Sprintf("actions.%d.group", i), "there is no group %q", a.Group)
				} else if err != nil {
					return nil, err
				}
			}
			return json.Marshal(r)
		},
		Present: directory.PresentAs(RuleOf),
	}
}

// RuleOf is the rule a stored setting holds, with the setting's version and times.
func RuleOf(s directory.Setting) (Rule, error) {
	var r Rule
	if err := json.Unmarshal(s.Body, &r); err != nil {
		return Rule{}, fault.Wrap(fault.Internal, "routing.RuleOf", err)
	}
	r.ID, r.Meta = s.ID, s.Meta
	return r, nil
}

// StoredRules reads the rule set from the directory's settings, once per call: a change applies
// to the next message.
type StoredRules struct {
	Store interface {
		Settings(ctx context.Context, kind string) ([]directory.Setting, int64, error)
	}
}

// RuleSet reads and compiles the stored rules.
func (s StoredRules) RuleSet(ctx context.Context) (*RuleSet, error) {
	settings, version, err := s.Store.Settings(ctx, RuleKind)
	if err != nil {
		return nil, err
	}
	rules := make([]Rule, 0, len(settings))
	for _, st := range settings {
		r, err := RuleOf(st)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	rs, err := Compile(version, rules)
	if err != nil {
		// Rules were validated when stored; one that no longer compiles is Mailroom's bug.
		return nil, fault.Wrap(fault.Internal, "routing.StoredRules", err)
	}
	return rs, nil
}
