package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/shared/mail"
)

func newParseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "parse FILE.eml",
		Short: "Print as JSON what Mailroom's parser extracts from a message",
		Long: "Parse reads a raw message (.eml) and prints the metadata the archive would record:\n" +
			"addresses, decoded subject, ids, attachments with sizes and SHA-256, and any problems found.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := parseFile(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(msg)
		},
	}
}

// parseFile parses a message file, refusing what is clearly not a mail message so that a typo'd
// path to a PDF does not silently become a message with a "no header" problem.
func parseFile(path string) (*mail.Message, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: no such file", path)
		}
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a message file", path)
	}
	msg, err := mail.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(msg.Header) == 0 {
		return nil, fmt.Errorf("%s is not a mail message: it has no header fields (expected RFC 5322 text such as an .eml file)", path)
	}
	return msg, nil
}
