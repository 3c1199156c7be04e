package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// group is a group as the admin API returns it.
type group struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	Addresses   []string `json:"addresses"`
	Owners      []string `json:"owners"`
	Posting     struct {
		Policy     string   `json:"policy"`
		Allow      []string `json:"allow"`
		Moderators []string `json:"moderators"`
	} `json:"posting"`
	Expires     string `json:"expires"`
	MemberCount int    `json:"memberCount"`
	Version     int64  `json:"version"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

var groups = resource[group]{
	collection: "groups", noun: "group", plural: "groups", key: "ID",
	columns: []column[group]{
		{"ID", func(g group) string { return g.ID }},
		{"NAME", func(g group) string { return g.Name }},
		{"TYPE", func(g group) string { return g.Type }},
		{"ADDRESSES", func(g group) string { return list(g.Addresses) }},
		{"OWNERS", func(g group) string { return list(g.Owners) }},
		{"POSTING", func(g group) string { return g.Posting.Policy }},
		{"MEMBERS", func(g group) string { return strconv.Itoa(g.MemberCount) }},
		{"EXPIRES", func(g group) string { return g.Expires }},
	},
	fields: func(g group) [][2]string {
		return [][2]string{
			{"id", g.ID}, {"name", g.Name}, {"description", g.Description}, {"type", g.Type},
			{"addresses", list(g.Addresses)}, {"owners", list(g.Owners)},
			{"posting", g.Posting.Policy}, {"allow", list(g.Posting.Allow)},
			{"moderators", list(g.Posting.Moderators)}, {"expires", g.Expires},
			{"members", strconv.Itoa(g.MemberCount)}, {"version", version(g.Version)},
			{"created", stamp(g.CreatedAt)}, {"updated", stamp(g.UpdatedAt)},
		}
	},
}

var groupFields = []flagField{
	{"name", "name"}, {"type", "type"}, {"description", "description"},
	{"address", "addresses"}, {"owner", "owners"}, {"posting", "posting.policy"},
	{"allow", "posting.allow"}, {"moderator", "posting.moderators"}, {"expires", "expires"},
}

func addGroupFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String("name", "", "the group's name for people")
	fs.String("type", "", "department, project, role, customer, region or other")
	fs.String("description", "", "what the group is for")
	fs.StringSlice("address", nil, "an address of the group (repeatable; on update, replaces the list)")
	fs.StringSlice("owner", nil, "a mailbox that manages the group (repeatable; on update, replaces the list)")
	fs.String("posting", "", "who may post: anyone, organisation, members, allow-list or moderated")
	fs.StringSlice("allow", nil, "an address or @domain that may post, with --posting allow-list (repeatable)")
	fs.StringSlice("moderator", nil, "a mailbox that approves held mail, with --posting moderated (repeatable)")
	fs.String("expires", "", "the group's last day, YYYY-MM-DD (project groups)")
}

func newGroupsCmd() *cobra.Command {
	cmd, o := newAPIParent("groups", "Manage groups, their members, and the group review")
	create := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Add a group; add its members with add-member",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := bodyFromFlags(cmd, append(groupFields, flagField{"id", "id"}), false)
			return groups.create(cmd, o, body)
		},
	}
	addGroupFlags(create)
	create.Flags().String("id", "", "the group's id: lower-case letters, digits and - (default: derived from --name)")
	create.MarkFlagRequired("name")
	o.addIdempotencyFlag(create)

	update := groups.updateCmd(o, addGroupFlags, groupFields, nil)
	update.Long = "Update changes the fields given by flags and leaves the others as they are. A list flag\n" +
		"(--address, --owner, --allow, --moderator) replaces the whole list; an empty value\n" +
		"(--owner \"\", --expires \"\") clears it."

	cmd.AddCommand(groups.listCmd(o), groups.getCmd(o), create, update, groups.deleteCmd(o),
		newMembersCmd(o), newAddMemberCmd(o), newRemoveMemberCmd(o), newExpandCmd(o), newReviewCmd(o))
	return cmd
}

// member is a group member as the admin API returns it.
type member struct {
	Kind    string `json:"kind"`
	Address string `json:"address,omitempty"`
	Group   string `json:"group,omitempty"`
}

// ref is the member as the API names it in a path: "mailbox:ana@example.com", "group:sales".
func (m member) ref() string {
	if m.Kind == "group" {
		return "group:" + m.Group
	}
	return m.Kind + ":" + m.Address
}

const memberHelp = `MEMBER is mailbox:ADDR, external:ADDR or group:ID. A bare address means a mailbox;
add --external to mean an address outside Mailroom instead.`

// parseMember reads MEMBER.
func parseMember(arg string, external bool) (member, error) {
	kind, value, ok := strings.Cut(arg, ":")
	// A quoted local part may hold a colon: only a word before it is a kind.
	if !ok || strings.IndexFunc(kind, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
		if !strings.Contains(arg, "@") {
			return member{}, fmt.Errorf("member %q: write mailbox:ADDR, external:ADDR or group:ID (a bare address means a mailbox)", arg)
		}
		if external {
			return member{Kind: "external", Address: arg}, nil
		}
		return member{Kind: "mailbox", Address: arg}, nil
	}
	if external && kind != "external" {
		return member{}, fmt.Errorf("member %q: --external is for a bare address", arg)
	}
	if value == "" {
		return member{}, fmt.Errorf("member %q: nothing after %q", arg, kind+":")
	}
	switch kind {
	case "mailbox", "external":
		return member{Kind: kind, Address: value}, nil
	case "group":
		return member{Kind: kind, Group: value}, nil
	}
	return member{}, fmt.Errorf("member %q: the kind is mailbox, external or group, not %q", arg, kind)
}

func newMembersCmd(o *apiOptions) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "members ID",
		Short: "List a group's direct members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runList(cmd, o, lf, "members", []string{"groups", args[0], "members"}, nil, []column[member]{
				{"KIND", func(m member) string { return m.Kind }},
				{"MEMBER", func(m member) string { return m.Address + m.Group }},
			})
		},
	}
	lf.add(cmd)
	return cmd
}

func newAddMemberCmd(o *apiOptions) *cobra.Command {
	var external bool
	cmd := &cobra.Command{
		Use:   "add-member ID MEMBER",
		Short: "Add a mailbox, an external address or a group to a group",
		Long:  "Add-member adds MEMBER to the group ID; adding one already there changes nothing.\n\n" + memberHelp,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMember(args[1], external)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			b, err := json.Marshal(m)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: []string{"groups", args[0], "members"}, body: b})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), resp.body)
			}
			var got member
			if err := decodeAnswer(resp.body, &got); err != nil {
				return err
			}
			if resp.status == http.StatusCreated {
				fmt.Fprintf(cmd.OutOrStdout(), "added %s to %s\n", got.ref(), args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is already a member of %s\n", got.ref(), args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&external, "external", false, "a bare address is an external one, not a mailbox")
	o.addIdempotencyFlag(cmd)
	return cmd
}

func newRemoveMemberCmd(o *apiOptions) *cobra.Command {
	var (
		external bool
		ifMatch  string
	)
	cmd := &cobra.Command{
		Use:   "remove-member ID MEMBER",
		Short: "Remove a member from a group",
		Long:  "Remove-member removes MEMBER from the group ID.\n\n" + memberHelp,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMember(args[1], external)
			if err != nil {
				return err
			}
			return runDelete(cmd, o, []string{"groups", args[0], "members", m.ref()}, ifMatch,
				fmt.Sprintf("removed %s from %s", m.ref(), args[0]))
		},
	}
	cmd.Flags().BoolVar(&external, "external", false, "a bare address is an external one, not a mailbox")
	addIfMatchFlag(cmd, &ifMatch)
	return cmd
}

// expansion is a group's final addresses.
type expansion struct {
	Group     string   `json:"group"`
	Addresses []string `json:"addresses"`
	Groups    []string `json:"groups"`
	Skipped   []struct {
		Address string `json:"address"`
		Reason  string `json:"reason"`
	} `json:"skipped"`
}

func newExpandCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "expand ID",
		Short: "Show the addresses mail to a group reaches, through nested groups",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var e expansion
			raw, err := c.getJSON(cmd.Context(), []string{"groups", args[0], "expanded"}, nil, &e)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.json {
				return printJSON(w, raw)
			}
			for _, a := range e.Addresses {
				fmt.Fprintln(w, a)
			}
			if len(e.Addresses) == 0 {
				fmt.Fprintf(w, "%s reaches nobody\n", e.Group)
			}
			fmt.Fprintf(w, "\n%d addresses through %s\n", len(e.Addresses), list(e.Groups))
			for _, s := range e.Skipped {
				fmt.Fprintf(w, "skipped %s (%s)\n", s.Address, s.Reason)
			}
			return nil
		},
	}
}

// review is the group review report.
type review struct {
	Expired         []reviewGroup `json:"expired"`
	Empty           []reviewGroup `json:"empty"`
	Unowned         []reviewGroup `json:"unowned"`
	InactiveMembers []struct {
		Group   string `json:"group"`
		Address string `json:"address"`
		Status  string `json:"status"`
	} `json:"inactiveMembers"`
}

type reviewGroup struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Expires string `json:"expires"`
}

// finding is one line of the review.
type finding struct{ problem, group, detail string }

func newReviewCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "review",
		Short: "Show groups that need attention: expired, empty, without an owner, with inactive members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var r review
			raw, err := c.getJSON(cmd.Context(), []string{"reports", "groups"}, nil, &r)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.json {
				return printJSON(w, raw)
			}
			var rows []finding
			for _, g := range r.Expired {
				rows = append(rows, finding{"expired", g.ID, "expired " + g.Expires})
			}
			for _, g := range r.Empty {
				rows = append(rows, finding{"empty", g.ID, g.Name})
			}
			for _, g := range r.Unowned {
				rows = append(rows, finding{"no active owner", g.ID, g.Name})
			}
			for _, m := range r.InactiveMembers {
				rows = append(rows, finding{"inactive member", m.Group, m.Address + " (" + m.Status + ")"})
			}
			if len(rows) == 0 {
				fmt.Fprintln(w, "nothing to review")
				return nil
			}
			return printTable(w, []column[finding]{
				{"PROBLEM", func(f finding) string { return f.problem }},
				{"GROUP", func(f finding) string { return f.group }},
				{"DETAIL", func(f finding) string { return f.detail }},
			}, rows)
		},
	}
}
