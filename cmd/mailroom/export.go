package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// csvKinds are the kinds of record a CSV holds, one kind per file.
var csvKinds = []string{"domains", "mailboxes", "aliases", "groups", "members"}

func newDirectoryCmd() *cobra.Command {
	cmd, o := newAPIParent("directory", "Export and import the whole directory")
	cmd.AddCommand(newExportCmd(o), newImportCmd(o))
	return cmd
}

func newExportCmd(o *apiOptions) *cobra.Command {
	var format, kind, out string
	cmd := &cobra.Command{
		Use:   "export [--format json|csv] [--kind KIND] [-o FILE]",
		Short: "Export the directory as one JSON document, or one kind of record as CSV",
		Long: `Export writes the whole directory as one JSON document (domains, mailboxes, aliases, and
groups with their members), or with --format csv one kind of record (--kind domains, mailboxes,
aliases, groups or members). Either can be imported again with "mailroom directory import".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"format": {format}}
			switch format {
			case "json":
				if kind != "" {
					return fmt.Errorf("--kind is for --format csv; the JSON export holds every kind")
				}
			case "csv":
				if !slices.Contains(csvKinds, kind) {
					return fmt.Errorf("--format csv exports one kind of record: give --kind %s", strings.Join(csvKinds, "|"))
				}
				q.Set("kind", kind)
			default:
				return fmt.Errorf("--format %q: want json or csv", format)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: []string{"directory", "export"}, query: q})
			if err != nil {
				return err
			}
			body := resp.body
			if format == "json" {
				if body, err = indentJSON(body); err != nil {
					return err
				}
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			// The directory is personal data: readable by its owner only, as the token is.
			if err := os.WriteFile(out, body, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported to %s (%d bytes)\n", out, len(body))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json or csv")
	cmd.Flags().StringVar(&kind, "kind", "", "with --format csv: "+strings.Join(csvKinds, ", "))
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

// importReport is what an import did, or with a dry run would do.
type importReport struct {
	DryRun    bool           `json:"dryRun"`
	Created   int            `json:"created"`
	Updated   int            `json:"updated"`
	Unchanged int            `json:"unchanged"`
	Results   []importResult `json:"results"`
}

type importResult struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
}

func newImportCmd(o *apiOptions) *cobra.Command {
	var (
		kind   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE [--kind KIND] [--dry-run]",
		Short: "Create or update directory records from a JSON export or a CSV file",
		Long: `Import sends FILE to the admin API, which validates every record first and changes nothing
if any is invalid; otherwise it creates or updates each record and audits it.

FILE is a .json directory document, as export writes it, or a .csv file of one kind of record:
domains, mailboxes, aliases, groups or members. The kind of a CSV is --kind, or else the file's
name says it: mailboxes.csv, mailroom-groups.csv. --dry-run reports what would change without
changing anything.` + apiHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			q := url.Values{}
			var contentType string
			switch ext := strings.ToLower(filepath.Ext(path)); ext {
			case ".json":
				if kind != "" {
					return fmt.Errorf("--kind is for CSV files; a JSON document says what each record is")
				}
				contentType = "application/json"
			case ".csv":
				if kind == "" {
					kind = kindFromName(path)
				}
				if !slices.Contains(csvKinds, kind) {
					return fmt.Errorf("cannot tell what %s holds: give --kind %s", path, strings.Join(csvKinds, "|"))
				}
				contentType = "text/csv"
				q.Set("kind", kind)
			default:
				return fmt.Errorf("%s: want a .json directory document or a .csv file", path)
			}
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if dryRun {
				q.Set("dryRun", "true")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), apiRequest{
				method: http.MethodPost, path: []string{"directory", "import"}, query: q,
				body: body, contentType: contentType,
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.json {
				return printJSON(w, resp.body)
			}
			var rep importReport
			if err := decodeAnswer(resp.body, &rep); err != nil {
				return err
			}
			// Unchanged records are usually most of them, and the summary counts them.
			var rows []importResult
			for _, r := range rep.Results {
				if r.Outcome != "unchanged" {
					rows = append(rows, r)
				}
			}
			if len(rows) > 0 {
				if err := printTable(w, []column[importResult]{
					{"KIND", func(r importResult) string { return r.Kind }},
					{"ID", func(r importResult) string { return r.ID }},
					{"OUTCOME", func(r importResult) string { return outcome(r.Outcome, rep.DryRun) }},
				}, rows); err != nil {
					return err
				}
			}
			counts := fmt.Sprintf("%d created, %d updated, %d unchanged", rep.Created, rep.Updated, rep.Unchanged)
			if rep.DryRun {
				fmt.Fprintf(w, "dry run, nothing changed: would be %s\n", counts)
			} else {
				fmt.Fprintln(w, counts)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "what a .csv file holds: "+strings.Join(csvKinds, ", ")+" (default: from the file's name)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report without changing anything")
	o.addIdempotencyFlag(cmd)
	return cmd
}

func outcome(o string, dryRun bool) string {
	if !dryRun {
		return o
	}
	return "would be " + o
}

// kindFromName is the kind of record a CSV file's name says it holds: "mailboxes.csv",
// "mailroom-mailboxes.csv" (as the API names its exports), "2026-11_groups.csv".
func kindFromName(path string) string {
	name := strings.ToLower(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	var found []string
	for _, k := range csvKinds {
		for _, sep := range []string{"-", "_", "."} {
			if name == k || strings.HasSuffix(name, sep+k) || strings.HasPrefix(name, k+sep) {
				found = append(found, k)
				break
			}
		}
	}
	if len(found) != 1 {
		return "" // none, or a name such as mailboxes-and-aliases.csv that does not say
	}
	return found[0]
}
