package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
)

func newCorpusCmd() *cobra.Command {
	var (
		workers int
		all     bool
	)
	cmd := &cobra.Command{
		Use:   "corpus DIR",
		Short: "Archive every message in DIR through the inbound path and summarise",
		Long: `Corpus receives each message in DIR the way SES would (raw object under inbound/, then the
inbound function), checks that its record and archived original exist, and prints a summary:
messages archived, flagged (with the problem codes found) and failed. The corpus group
acknowledges new conversations, and corpus then counts, per category, the messages that would
get an automatic reply and the rules that keep the others silent. It exits non-zero when any
message failed to archive, or when a bounce, auto-reply, list post or spam message would be
answered.

Messages are the files listed in DIR/manifest.tsv when it exists (first column, relative to DIR),
otherwise every *.eml file under DIR (every file with --all). It uses the local stack named by the
MAILROOM_* variables (as under "make corpus"), or starts an in-memory one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			files, categories, err := corpusFiles(args[0], all)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("%s: no messages found", args[0])
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ep, ok := devstack.EndpointsFromEnv()
			if !ok {
				stack, err := devstack.Start(ctx, devstack.Options{WithSES: true, Log: log})
				if err != nil {
					return err
				}
				defer stack.Stop()
				ep = stack.Endpoints()
			}
			clients, err := ep.Clients(ctx)
			if err != nil {
				return err
			}
			root, err := devstack.FindRepoRoot()
			if err != nil {
				return err
			}
			tmpl, err := devstack.LoadTemplate(filepath.Join(root, "template.yaml"))
			if err != nil {
				return err
			}
			suffix := randomSuffix()
			bucket, table := "corpus-"+suffix, "corpus-"+suffix
			if err := tmpl.CreateBucket(ctx, clients.S3, "MailBucket", bucket); err != nil {
				return err
			}
			tb := tables{archive: table, directory: table + "-directory", state: table + "-state"}
			for id, name := range map[string]string{"ArchiveTable": tb.archive, "DirectoryTable": tb.directory, "StateTable": tb.state} {
				if err := tmpl.CreateTable(ctx, clients.DynamoDB, id, name); err != nil {
					return err
				}
			}
			if err := corpusDirectory(ctx, clients, tb.directory); err != nil {
				return err
			}
			if err := corpusAcknowledgement(ctx, clients, tb.directory); err != nil {
				return err
			}
			recv, err := newReceiving(clients, bucket, "", tb, []string{corpusDomain}, log)
			if err != nil {
				return err
			}
			results := archiveAll(ctx, recv, files, workers)
			failed := printCorpusSummary(cmd.OutOrStdout(), args[0], files, categories, results, bucket, table)
			replies := corpusReplies(ctx, clients, tb.directory, files, categories)
			failed += printAutoReplies(cmd.OutOrStdout(), args[0], files, categories, replies)
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 4, "messages archived concurrently")
	cmd.Flags().BoolVar(&all, "all", false, "without a manifest, take every file under DIR, not only *.eml")
	return cmd
}

// corpusFiles lists the messages in dir, with their category when a manifest names one.
func corpusFiles(dir string, all bool) ([]string, map[string]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory", dir)
	}
	categories := map[string]string{}
	if f, err := os.Open(filepath.Join(dir, "manifest.tsv")); err == nil {
		defer f.Close()
		var files []string
		sc := bufio.NewScanner(f)
		for first := true; sc.Scan(); first = false {
			cols := strings.Split(sc.Text(), "\t")
			if first || cols[0] == "" {
				continue // header row
			}
			path := filepath.Join(dir, filepath.FromSlash(cols[0]))
			files = append(files, path)
			if len(cols) > 2 {
				categories[path] = cols[2]
			}
		}
		return files, categories, sc.Err()
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && (all || strings.EqualFold(filepath.Ext(path), ".eml")) {
			files = append(files, path)
		}
		return nil
	})
	return files, categories, err
}

type corpusResult struct {
	id          string
	flags       []string
	attachments int
	err         error
}

func archiveAll(ctx context.Context, recv *receiving, files []string, workers int) []corpusResult {
	results := make([]corpusResult, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				results[i] = archiveOne(ctx, recv, files[i])
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// archiveOne receives one file as SES would and checks both halves of the archive exist.
func archiveOne(ctx context.Context, recv *receiving, path string) corpusResult {
	f, err := os.Open(path)
	if err != nil {
		return corpusResult{err: err}
	}
	defer f.Close()
	receipt, err := recv.ingress.Receive(ctx, "corpus@mailroom.test", []string{"archive@corpus.mailroom.test"}, withoutMboxSeparator(f))
	if err != nil {
		return corpusResult{err: fmt.Errorf("receive: %w", err)}
	}
	if receipt.InvokeErr != nil {
		return corpusResult{id: receipt.MessageID, err: fmt.Errorf("inbound function: %w", receipt.InvokeErr)}
	}
	rec, err := recv.index.Get(ctx, receipt.MessageID)
	if err != nil {
		return corpusResult{id: receipt.MessageID, err: fmt.Errorf("archive record: %w", err)}
	}
	body, size, err := recv.store.Open(ctx, rec.Key)
	if err != nil {
		return corpusResult{id: receipt.MessageID, err: fmt.Errorf("archived original: %w", err)}
	}
	n, err := io.Copy(io.Discard, body)
	body.Close()
	if err != nil || n != rec.Size || size != rec.Size {
		return corpusResult{id: receipt.MessageID, err: fmt.Errorf("archived original is %d bytes, record says %d (%v)", n, rec.Size, err)}
	}
	return corpusResult{id: receipt.MessageID, flags: rec.Flags, attachments: len(rec.Attachments)}
}

// printCorpusSummary writes the summary and returns how many messages failed.
func printCorpusSummary(w io.Writer, dir string, files []string, categories map[string]string, results []corpusResult, bucket, table string) int {
	type tally struct{ total, flagged, failed int }
	byCategory := map[string]*tally{}
	flagCounts := map[string]int{}
	var failures []string
	var total tally
	attachments := 0
	for i, r := range results {
		cat := categories[files[i]]
		if cat == "" {
			cat = "-"
		}
		t := byCategory[cat]
		if t == nil {
			t = &tally{}
			byCategory[cat] = t
		}
		t.total++
		total.total++
		switch {
		case r.err != nil:
			t.failed++
			total.failed++
			rel, _ := filepath.Rel(dir, files[i])
			failures = append(failures, fmt.Sprintf("  %s: %v", rel, r.err))
		case len(r.flags) > 0:
			t.flagged++
			total.flagged++
		}
		attachments += r.attachments
		for _, f := range r.flags {
			flagCounts[f]++
		}
	}
	fmt.Fprintf(w, "Archived %d of %d messages from %s (bucket %s, table %s): %d flagged, %d failed, %d attachments.\n\n",
		total.total-total.failed, total.total, dir, bucket, table, total.flagged, total.failed, attachments)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(byCategory) > 1 || byCategory["-"] == nil {
		fmt.Fprintln(tw, "category\tmessages\tflagged\tfailed")
		for _, c := range sortedKeys(byCategory) {
			t := byCategory[c]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", c, t.total, t.flagged, t.failed)
		}
		fmt.Fprintln(tw)
	}
	if len(flagCounts) > 0 {
		fmt.Fprintln(tw, "flag\tmessages")
		flags := sortedKeys(flagCounts)
		sort.SliceStable(flags, func(i, j int) bool { return flagCounts[flags[i]] > flagCounts[flags[j]] })
		for _, f := range flags {
			fmt.Fprintf(tw, "%s\t%d\n", f, flagCounts[f])
		}
	}
	tw.Flush()
	if len(failures) > 0 {
		fmt.Fprintf(w, "\nFailed:\n%s\n", strings.Join(failures, "\n"))
	}
	return total.failed
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// corpusDomain receives the corpus; its archive@ address is a group with an external member, so
// every message is routed and forwarded as real mail would be: a message that made routing or
// delivery fail, or loop, fails the run.
const corpusDomain = "corpus.mailroom.test"

func corpusDirectory(ctx context.Context, clients awsclient.Clients, table string) error {
	store := dynamo.NewDirectory(clients.DynamoDB, table, "")
	now := time.Now().UTC()
	meta := directory.Meta{Version: 1, CreatedAt: now, UpdatedAt: now}
	return store.Apply(ctx,
		directory.PutDomain{Domain: directory.Domain{Name: corpusDomain, UnknownRecipients: directory.UnknownBounce, Meta: meta}},
		directory.ClaimAddress{Address: "archive@" + corpusDomain, Owner: directory.Owner{Kind: directory.KindGroup, ID: "archive"}},
		directory.PutGroup{Group: directory.Group{ID: "archive", Name: "Corpus", Type: "other", Addresses: []string{"archive@" + corpusDomain},
			Posting: directory.Posting{Policy: directory.PostAnyone}, MemberCount: 1, Meta: meta}},
		directory.PutMember{Group: "archive", Member: directory.Member{Kind: directory.KindExternal, Address: "reader@forward.mailroom.test"}},
	)
}
