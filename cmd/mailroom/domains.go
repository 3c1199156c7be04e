package main

import (
	"github.com/spf13/cobra"
)

// domain is a domain as the admin API returns it.
type domain struct {
	Name              string `json:"name"`
	UnicodeName       string `json:"unicodeName"`
	UnknownRecipients string `json:"unknownRecipients"`
	CatchAll          string `json:"catchAll"`
	Version           int64  `json:"version"`
	CreatedAt         string `json:"createdAt"`
	UpdatedAt         string `json:"updatedAt"`
}

var domains = resource[domain]{
	collection: "domains", noun: "domain", plural: "domains", key: "NAME",
	columns: []column[domain]{
		{"NAME", func(d domain) string { return d.Name }},
		{"UNKNOWN RECIPIENTS", func(d domain) string { return d.UnknownRecipients }},
		{"CATCH-ALL", func(d domain) string { return d.CatchAll }},
		{"VERSION", func(d domain) string { return version(d.Version) }},
	},
	fields: func(d domain) [][2]string {
		f := [][2]string{{"name", d.Name}}
		if d.UnicodeName != d.Name {
			f = append(f, [2]string{"unicode name", d.UnicodeName})
		}
		return append(f,
			[2]string{"unknown recipients", d.UnknownRecipients}, [2]string{"catch-all", d.CatchAll},
			[2]string{"version", version(d.Version)}, [2]string{"created", stamp(d.CreatedAt)}, [2]string{"updated", stamp(d.UpdatedAt)})
	},
}

var domainFields = []flagField{{"unknown-recipients", "unknownRecipients"}, {"catch-all", "catchAll"}}

func addDomainFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.String("unknown-recipients", "", "mail for addresses nobody has: bounce (default), drop or catch-all")
	fs.String("catch-all", "", "the address on the domain that gets such mail with --unknown-recipients catch-all")
}

func newDomainsCmd() *cobra.Command {
	cmd, o := newAPIParent("domains", "Manage the mail domains Mailroom serves")
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Add a domain",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := bodyFromFlags(cmd, domainFields, false)
			body["name"] = args[0]
			return domains.create(cmd, o, body)
		},
	}
	addDomainFlags(create)
	o.addIdempotencyFlag(create)
	cmd.AddCommand(domains.listCmd(o), domains.getCmd(o), create,
		domains.updateCmd(o, addDomainFlags, domainFields, nil), domains.deleteCmd(o))
	return cmd
}
