package directory

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// Review is the group review report: what an administrator should look at.
type Review struct {
	// Expired are groups past their expiry date, which routing no longer delivers to.
	Expired []ReviewGroup `json:"expired"`
	// Empty are groups without members.
	Empty []ReviewGroup `json:"empty"`
	// Unowned are groups without an owner, or whose owners are all no longer active.
	Unowned []ReviewGroup `json:"unowned"`
	// InactiveMembers are memberships of mailboxes that are suspended or closed.
	InactiveMembers []InactiveMember `json:"inactiveMembers"`
}

// ReviewGroup names a group in the review report.
type ReviewGroup struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Expires string `json:"expires,omitempty"`
}

// InactiveMember is a group member whose mailbox is not active.
type InactiveMember struct {
	Group   string `json:"group"`
	Address string `json:"address"`
	Status  string `json:"status"`
}

// ReviewGroups builds the group review report. It reads every group once and each group's mailbox
// members once. Admins and auditors.
func (s *Service) ReviewGroups(ctx context.Context, c Call) (Review, error) {
	const op = "directory.ReviewGroups"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return Review{}, err
	}
	r := Review{Expired: []ReviewGroup{}, Empty: []ReviewGroup{}, Unowned: []ReviewGroup{}, InactiveMembers: []InactiveMember{}}
	today := s.now().Format(time.DateOnly)
	active := map[string]bool{}
	ownerActive := func(addr string) (bool, error) {
		if v, ok := active[addr]; ok {
			return v, nil
		}
		m, err := s.Store.Mailbox(ctx, addr)
		if err != nil && !fault.Is(err, fault.NotFound) {
			return false, err
		}
		active[addr] = err == nil && m.Status == StatusActive
		return active[addr], nil
	}
	p := Page{Limit: 1000}
	for {
		groups, next, err := s.Store.Groups(ctx, p)
		if err != nil {
			return Review{}, err
		}
		for _, g := range groups {
			rg := ReviewGroup{ID: g.ID, Name: g.Name, Expires: g.Expires}
			if g.Expires != "" && g.Expires < today {
				r.Expired = append(r.Expired, rg)
			}
			if g.MemberCount == 0 {
				r.Empty = append(r.Empty, rg)
			}
			owned := false
			for _, o := range g.Owners {
				ok, err := ownerActive(o)
				if err != nil {
					return Review{}, err
				}
				owned = owned || ok
			}
			if !owned {
				r.Unowned = append(r.Unowned, rg)
			}
			if g.MemberCount == 0 {
				continue
			}
			members, err := s.Store.AllMembers(ctx, g.ID, KindMailbox)
			if err != nil {
				return Review{}, err
			}
			for _, m := range members {
				if m.Status != "" && m.Status != StatusActive {
					r.InactiveMembers = append(r.InactiveMembers, InactiveMember{Group: g.ID, Address: m.Address, Status: m.Status})
				}
			}
		}
		if next == "" {
			return r, nil
		}
		p.Cursor = next
	}
}

// maxAuditRange bounds a day-by-day audit query.
const maxAuditRange = 366 * 24 * time.Hour

// QueryAudit reads the audit log newest first. Admins and auditors.
func (s *Service) QueryAudit(ctx context.Context, c Call, q AuditQuery, p Page) ([]AuditEntry, string, error) {
	const op = "directory.QueryAudit"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return nil, "", err
	}
	if err := checkPage(op, p); err != nil {
		return nil, "", err
	}
	if q.To.IsZero() {
		q.To = s.now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-7 * 24 * time.Hour)
	}
	if q.From.After(q.To) {
		return nil, "", fault.InvalidField(op, "from", "is after to")
	}
	if q.Actor != "" && q.Resource != "" {
		return nil, "", fault.InvalidField(op, "resource", "query by actor or by resource, not both")
	}
	if q.Actor == "" && q.Resource == "" && q.To.Sub(q.From) > maxAuditRange {
		return nil, "", fault.InvalidField(op, "from", "a range over all resources spans at most 366 days")
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	return s.Audit.Audit(ctx, q, page(p))
}
