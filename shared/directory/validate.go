package directory

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/mailroom/mailroom/shared/fault"
)

const (
	maxName        = 200
	maxDescription = 2000
	maxForwardTo   = 10
	maxAddresses   = 20
	maxOwners      = 50
	maxAllow       = 1000
)

var groupID = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// checkText refuses control characters: names end up in mail headers, where a line break would
// let a value start a header of its own.
func checkText(op, field, v string, max int) error {
	if !utf8.ValidString(v) {
		return fault.InvalidField(op, field, "is not valid UTF-8")
	}
	if utf8.RuneCountInString(v) > max {
		return fault.InvalidField(op, field, "is longer than %d characters", max)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fault.InvalidField(op, field, "contains a control character or line break")
		}
	}
	return nil
}

func address(op, field, v string) (string, error) {
	a, err := NormalizeAddress(v)
	if err != nil {
		return "", fault.InvalidField(op, field, "%v", err)
	}
	return a, nil
}

// addressList normalises a list of addresses, refusing duplicates.
func addressList(op, field string, vs []string, max int) ([]string, error) {
	if len(vs) > max {
		return nil, fault.InvalidField(op, field, "has more than %d entries", max)
	}
	out := make([]string, 0, len(vs))
	for i, v := range vs {
		a, err := address(op, fmt.Sprintf("%s.%d", field, i), v)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, a) {
			return nil, fault.InvalidField(op, fmt.Sprintf("%s.%d", field, i), "%s is listed twice", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func oneOf(op, field, v, def string, allowed []string) (string, error) {
	if v == "" {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", fault.InvalidField(op, field, "must be one of %s", strings.Join(allowed, ", "))
	}
	return v, nil
}

// normalizeDomain checks a domain's own fields; references are checked by the service.
func normalizeDomain(op string, d *Domain) error {
	ascii, uni, err := NormalizeDomain(d.Name)
	if err != nil {
		return fault.InvalidField(op, "name", "%v", err)
	}
	d.Name, d.UnicodeName = ascii, uni
	if d.UnknownRecipients, err = oneOf(op, "unknownRecipients", d.UnknownRecipients, UnknownBounce,
		[]string{UnknownBounce, UnknownDrop, UnknownCatchAll}); err != nil {
		return err
	}
	if d.CatchAll != "" {
		if d.CatchAll, err = address(op, "catchAll", d.CatchAll); err != nil {
			return err
		}
	}
	if d.UnknownRecipients == UnknownCatchAll && d.CatchAll == "" {
		return fault.InvalidField(op, "catchAll", "is required when unknownRecipients is catch-all")
	}
	return nil
}

func normalizeMailbox(op string, m *Mailbox) error {
	var err error
	if m.Address, err = address(op, "address", m.Address); err != nil {
		return err
	}
	if err = checkText(op, "displayName", m.DisplayName, maxName); err != nil {
		return err
	}
	if m.ForwardTo, err = addressList(op, "forwardTo", m.ForwardTo, maxForwardTo); err != nil {
		return err
	}
	if i := slices.Index(m.ForwardTo, m.Address); i >= 0 {
		return fault.InvalidField(op, fmt.Sprintf("forwardTo.%d", i), "a mailbox cannot forward to itself")
	}
	if m.Status, err = oneOf(op, "status", m.Status, StatusActive,
		[]string{StatusActive, StatusSuspended, StatusClosed}); err != nil {
		return err
	}
	if m.Manager != "" {
		if m.Manager, err = address(op, "manager", m.Manager); err != nil {
			return err
		}
		if m.Manager == m.Address {
			return fault.InvalidField(op, "manager", "a mailbox cannot manage itself")
		}
	}
	if m.Locale == "" {
		m.Locale = "en"
	}
	tag, err := language.Parse(m.Locale)
	if err != nil {
		return fault.InvalidField(op, "locale", "%q is not a BCP 47 language tag", m.Locale)
	}
	m.Locale = tag.String()
	if m.TimeZone == "" {
		m.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(m.TimeZone); err != nil || m.TimeZone == "Local" {
		return fault.InvalidField(op, "timeZone", "%q is not an IANA time zone", m.TimeZone)
	}
	return nil
}

func normalizeAlias(op string, a *Alias) error {
	var err error
	if a.Address, err = address(op, "address", a.Address); err != nil {
		return err
	}
	if a.Target, err = address(op, "target", a.Target); err != nil {
		return err
	}
	if a.Target == a.Address {
		return fault.InvalidField(op, "target", "an alias cannot point at itself")
	}
	return nil
}

// GroupID derives a group id from a name: lower-case ASCII letters and digits, other runs
// replaced by one hyphen.
func GroupID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 64 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}

func normalizeGroup(op string, g *Group) error {
	var err error
	g.Name = strings.TrimSpace(g.Name)
	if g.Name == "" {
		return fault.InvalidField(op, "name", "is required")
	}
	if err = checkText(op, "name", g.Name, maxName); err != nil {
		return err
	}
	if g.ID == "" {
		g.ID = GroupID(g.Name)
		if g.ID == "" {
			return fault.InvalidField(op, "id", "cannot be derived from the name; give one")
		}
	}
	if !groupID.MatchString(g.ID) {
		return fault.InvalidField(op, "id", "must be 1 to 64 lower-case letters, digits and inner hyphens")
	}
	if err = checkText(op, "description", g.Description, maxDescription); err != nil {
		return err
	}
	if g.Type, err = oneOf(op, "type", g.Type, "other", GroupTypes); err != nil {
		return err
	}
	if g.Addresses, err = addressList(op, "addresses", g.Addresses, maxAddresses); err != nil {
		return err
	}
	if g.Owners, err = addressList(op, "owners", g.Owners, maxOwners); err != nil {
		return err
	}
	if g.Posting.Policy, err = oneOf(op, "posting.policy", g.Posting.Policy, PostOrganisation, PostingPolicies); err != nil {
		return err
	}
	if len(g.Posting.Allow) > maxAllow {
		return fault.InvalidField(op, "posting.allow", "has more than %d entries", maxAllow)
	}
	allow := make([]string, 0, len(g.Posting.Allow))
	for i, a := range g.Posting.Allow {
		field := fmt.Sprintf("posting.allow.%d", i)
		if d, ok := strings.CutPrefix(strings.TrimSpace(a), "@"); ok {
			ascii, _, err := NormalizeDomain(d)
			if err != nil {
				return fault.InvalidField(op, field, "%v", err)
			}
			a = "@" + ascii
		} else if a, err = address(op, field, a); err != nil {
			return err
		}
		if !slices.Contains(allow, a) {
			allow = append(allow, a)
		}
	}
	g.Posting.Allow = allow
	if len(allow) == 0 {
		g.Posting.Allow = nil
	}
	if g.Posting.Policy == PostAllowList && len(allow) == 0 {
		return fault.InvalidField(op, "posting.allow", "is required for the allow-list policy")
	}
	if g.Posting.Moderators, err = addressList(op, "posting.moderators", g.Posting.Moderators, maxOwners); err != nil {
		return err
	}
	if g.Posting.Policy == PostModerated && len(g.Posting.Moderators) == 0 && len(g.Owners) == 0 {
		return fault.InvalidField(op, "posting.moderators", "a moderated group needs moderators or owners")
	}
	if g.Expires != "" {
		if _, err := time.Parse(time.DateOnly, g.Expires); err != nil {
			return fault.InvalidField(op, "expires", "must be a date, YYYY-MM-DD")
		}
	}
	return nil
}

// normalizeMember checks a member's own syntax; whether it exists is the service's job.
func normalizeMember(op string, m *Member) error {
	var err error
	switch m.Kind {
	case KindMailbox, KindExternal:
		if m.Group != "" {
			return fault.InvalidField(op, "group", "is only for members of kind group")
		}
		m.Address, err = address(op, "address", m.Address)
		return err
	case KindGroup:
		if m.Address != "" {
			return fault.InvalidField(op, "address", "is not for members of kind group")
		}
		if !groupID.MatchString(m.Group) {
			return fault.InvalidField(op, "group", "is not a group id")
		}
		return nil
	case "":
		return fault.InvalidField(op, "kind", "is required: mailbox, external or group")
	}
	return fault.InvalidField(op, "kind", "must be mailbox, external or group")
}

// ParseMemberRef reads a member reference as it appears in a path: "mailbox:ana@example.com",
// "external:x@partner.example" or "group:sales".
func ParseMemberRef(op, ref string) (Member, error) {
	kind, rest, ok := strings.Cut(ref, ":")
	if !ok {
		return Member{}, fault.InvalidField(op, "member", "must be kind:address or group:id")
	}
	m := Member{Kind: kind}
	if kind == KindGroup {
		m.Group = rest
	} else {
		m.Address = rest
	}
	if err := normalizeMember(op, &m); err != nil {
		return Member{}, fault.InvalidField(op, "member", "%s", fault.MessageOf(err))
	}
	return m, nil
}
