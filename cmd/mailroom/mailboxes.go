package main

import (
	"github.com/spf13/cobra"
)

// mailbox is a mailbox as the admin API returns it.
type mailbox struct {
	Address     string   `json:"address"`
	DisplayName string   `json:"displayName"`
	ForwardTo   []string `json:"forwardTo"`
	Status      string   `json:"status"`
	Manager     string   `json:"manager"`
	Locale      string   `json:"locale"`
	TimeZone    string   `json:"timeZone"`
	Version     int64    `json:"version"`
	CreatedAt   string   `json:"createdAt"`
	UpdatedAt   string   `json:"updatedAt"`
}

var mailboxes = resource[mailbox]{
	collection: "mailboxes", noun: "mailbox", plural: "mailboxes", key: "ADDR",
	columns: []column[mailbox]{
		{"ADDRESS", func(m mailbox) string { return m.Address }},
		{"NAME", func(m mailbox) string { return m.DisplayName }},
		{"STATUS", func(m mailbox) string { return m.Status }},
		{"FORWARD TO", func(m mailbox) string { return list(m.ForwardTo) }},
		{"MANAGER", func(m mailbox) string { return m.Manager }},
		{"LOCALE", func(m mailbox) string { return m.Locale }},
		{"TIME ZONE", func(m mailbox) string { return m.TimeZone }},
	},
	fields: func(m mailbox) [][2]string {
		return [][2]string{
			{"address", m.Address}, {"name", m.DisplayName}, {"status", m.Status},
			{"forward to", list(m.ForwardTo)}, {"manager", m.Manager}, {"locale", m.Locale},
			{"time zone", m.TimeZone}, {"version", version(m.Version)},
			{"created", stamp(m.CreatedAt)}, {"updated", stamp(m.UpdatedAt)},
		}
	},
}

var mailboxFields = []flagField{
	{"name", "displayName"}, {"forward", "forwardTo"}, {"status", "status"},
	{"manager", "manager"}, {"locale", "locale"}, {"time-zone", "timeZone"},
}

func addMailboxFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String("name", "", "display name")
	fs.StringSlice("forward", nil, "forward mail to these addresses instead (comma-separated, at most 10)")
	fs.String("status", "", "active (default), suspended or closed")
	fs.String("manager", "", "the manager's mailbox")
	fs.String("locale", "", "BCP 47 language tag for auto-replies, e.g. ms-MY (default en)")
	fs.String("time-zone", "", "IANA time zone, e.g. Asia/Kuala_Lumpur (default UTC)")
}

func newMailboxesCmd() *cobra.Command {
	cmd, o := newAPIParent("mailboxes", "Manage mailboxes")
	create := &cobra.Command{
		Use:   "create ADDR [flags]",
		Short: "Add a mailbox on a domain Mailroom serves",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := bodyFromFlags(cmd, mailboxFields, false)
			body["address"] = args[0]
			return mailboxes.create(cmd, o, body)
		},
	}
	addMailboxFlags(create)
	o.addIdempotencyFlag(create)

	update := mailboxes.updateCmd(o,
		func(cmd *cobra.Command) {
			addMailboxFlags(cmd)
			cmd.Flags().Bool("clear-forward", false, "stop forwarding: deliver to the mailbox itself")
		},
		append(mailboxFields, flagField{"clear-forward", "forwardTo"}),
		func(cmd *cobra.Command, patch map[string]any) {
			if clear, _ := cmd.Flags().GetBool("clear-forward"); clear {
				patch["forwardTo"] = nil
			}
		})
	update.MarkFlagsMutuallyExclusive("forward", "clear-forward")
	update.Long = "Update changes the fields given by flags and leaves the others as they are. An empty\n" +
		"value (--manager \"\") clears an optional field or returns it to its default."
	cmd.AddCommand(mailboxes.listCmd(o), mailboxes.getCmd(o), create, update, mailboxes.deleteCmd(o))
	return cmd
}

// alias is an alias as the admin API returns it.
type alias struct {
	Address    string `json:"address"`
	Target     string `json:"target"`
	TargetKind string `json:"targetKind"`
	Version    int64  `json:"version"`
	CreatedAt  string `json:"createdAt"`
	UpdatedAt  string `json:"updatedAt"`
}

var aliases = resource[alias]{
	collection: "aliases", noun: "alias", plural: "aliases", key: "ADDR",
	columns: []column[alias]{
		{"ADDRESS", func(a alias) string { return a.Address }},
		{"TARGET", func(a alias) string { return a.Target }},
		{"KIND", func(a alias) string { return a.TargetKind }},
	},
	fields: func(a alias) [][2]string {
		return [][2]string{
			{"address", a.Address}, {"target", a.Target}, {"target kind", a.TargetKind},
			{"version", version(a.Version)}, {"created", stamp(a.CreatedAt)}, {"updated", stamp(a.UpdatedAt)},
		}
	},
}

var aliasFields = []flagField{{"target", "target"}}

func addAliasFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String("target", "", "the address of the mailbox or group the alias delivers to")
}

func newAliasesCmd() *cobra.Command {
	cmd, o := newAPIParent("aliases", "Manage aliases: other addresses for mailboxes and groups")
	create := &cobra.Command{
		Use:   "create ADDR --target ADDR",
		Short: "Add an alias",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := bodyFromFlags(cmd, aliasFields, false)
			body["address"] = args[0]
			return aliases.create(cmd, o, body)
		},
	}
	addAliasFlags(create)
	create.MarkFlagRequired("target")
	o.addIdempotencyFlag(create)
	update := aliases.updateCmd(o, addAliasFlags, aliasFields, nil)
	update.MarkFlagRequired("target")
	cmd.AddCommand(aliases.listCmd(o), aliases.getCmd(o), create, update, aliases.deleteCmd(o))
	return cmd
}
