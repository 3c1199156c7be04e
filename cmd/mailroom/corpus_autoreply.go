package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailroom/mailroom/shared/autoreply"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// silentCategories are the corpus categories no automatic reply may answer.
var silentCategories = map[string]bool{"bounce": true, "autoreply": true, "list": true, "spam": true}

// corpusAcknowledgement makes the corpus group acknowledge every new conversation, so that each
// message asks the question an auto-responder faces: answer or stay silent.
func corpusAcknowledgement(ctx context.Context, clients awsclient.Clients, table string) error {
	store := dynamo.NewDirectory(clients.DynamoDB, table, "")
	body, err := json.Marshal(autoreply.Acknowledgement{Group: "archive", Enabled: true, PromiseHours: 8})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return store.Apply(ctx,
		directory.PutSetting{Setting: directory.Setting{Kind: autoreply.KindAcknowledgement, ID: "archive", Body: body,
			Meta: directory.Meta{Version: 1, CreatedAt: now, UpdatedAt: now}}},
		directory.BumpSettings{Kind: autoreply.KindAcknowledgement})
}

// autoReplyResult is what the corpus group's acknowledgement decided for one message.
type autoReplyResult struct {
	replied bool
	rule    string
	// spamOnly is true when only SES's spam verdict kept a reply from a spam message.
	spamOnly bool
	err      error
}

// corpusReplies decides, for each message, whether the corpus group would acknowledge it, as
// the inbound function decides: routing, then the rules of when not to reply. Rate limits are
// left out (they only ever remove replies, and would hide what the rules decide for a sender
// who wrote twice). The corpus records no SMTP envelope: the envelope sender is the message's
// Return-Path ("<>" is the null sender of bounces), else its From. SES's spam verdict is FAIL
// for the messages the corpus files as spam: SES's spam filter, not Mailroom, judges content.
func corpusReplies(ctx context.Context, clients awsclient.Clients, table string, files []string, categories map[string]string) []autoReplyResult {
	store := dynamo.NewDirectory(clients.DynamoDB, table, "")
	router := &routing.Router{Directory: store, Rules: routing.StoredRules{Store: store}, Closed: autoreply.ClosedNotices{Settings: store}}
	planner := &autoreply.Planner{Settings: store, Directory: store}
	out := make([]autoReplyResult, len(files))
	for i, path := range files {
		m, err := corpusMessage(path)
		if err != nil {
			out[i].err = err
			continue
		}
		env := routing.Envelope{
			ID: fmt.Sprintf("corpus-%d", i), EnvelopeFrom: envelopeGuess(m),
			Recipients: []string{"archive@" + corpusDomain}, ReceivedAt: time.Now().UTC(),
			Verdicts: routing.Verdicts{Spam: "PASS", Virus: "PASS", SPF: "GRAY", DKIM: "GRAY", DMARC: "GRAY"},
		}
		decide := func(spam string) (autoreply.Reply, bool, error) {
			env.Verdicts.Spam = spam
			msg, err := routing.MessageOf(ctx, store, env, m)
			if err != nil {
				return autoreply.Reply{}, false, err
			}
			dec, err := router.Decide(ctx, msg)
			if err != nil {
				return autoreply.Reply{}, false, err
			}
			replies, err := planner.Plan(ctx, msg, m, dec)
			if err != nil || len(replies) == 0 {
				return autoreply.Reply{}, false, err
			}
			return replies[0], true, nil
		}
		spam := "PASS"
		if categories[path] == "spam" {
			spam = "FAIL"
		}
		r, ok, err := decide(spam)
		switch {
		case err != nil:
			out[i].err = err
			continue
		case !ok:
			out[i].err = fmt.Errorf("the corpus group planned no acknowledgement at all")
			continue
		}
		out[i].replied, out[i].rule = r.Verdict.Reply, r.Verdict.Rule
		if spam == "FAIL" && r.Verdict.Rule == "spam" {
			if again, _, err := decide("PASS"); err == nil && again.Verdict.Reply {
				out[i].spamOnly = true
			}
		}
	}
	return out
}

func corpusMessage(path string) (*mail.Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mail.Parse(withoutMboxSeparator(f))
}

// envelopeGuess stands in for the SMTP MAIL FROM the corpus does not record.
func envelopeGuess(m *mail.Message) string {
	if rp, ok := m.ReturnPath(); ok {
		return rp
	}
	if len(m.From) > 0 {
		return m.From[0].Address
	}
	return ""
}

// printAutoReplies writes how many messages of each category would be answered, and returns how
// many of the silent categories' messages would be.
func printAutoReplies(w io.Writer, dir string, files []string, categories map[string]string, results []autoReplyResult) int {
	type tally struct {
		total, replied, spamOnly int
		rules                    map[string]int
	}
	by := map[string]*tally{}
	wrong := 0
	var wrongFiles, failures []string
	for i, r := range results {
		rel, _ := filepath.Rel(dir, files[i])
		if r.err != nil {
			failures = append(failures, fmt.Sprintf("  %s: %v", rel, r.err))
			continue
		}
		cat := categories[files[i]]
		if cat == "" {
			cat = "-"
		}
		t := by[cat]
		if t == nil {
			t = &tally{rules: map[string]int{}}
			by[cat] = t
		}
		t.total++
		if r.spamOnly {
			t.spamOnly++
		}
		if r.replied {
			t.replied++
			if silentCategories[cat] {
				wrong++
				wrongFiles = append(wrongFiles, fmt.Sprintf("  %s (%s)", rel, cat))
			}
			continue
		}
		t.rules[r.rule]++
	}
	fmt.Fprintf(w, "\nAutomatic replies: each message as a new conversation to a group that acknowledges every one (rate limits aside).\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "category\tmessages\tanswered\tsilent\tsilent because")
	for _, c := range sortedKeys(by) {
		t := by[c]
		rules := sortedKeys(t.rules)
		sort.SliceStable(rules, func(i, j int) bool { return t.rules[rules[i]] > t.rules[rules[j]] })
		because := make([]string, len(rules))
		for i, r := range rules {
			because[i] = fmt.Sprintf("%s %d", r, t.rules[r])
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", c, t.total, t.replied, t.total-t.replied, strings.Join(because, ", "))
	}
	tw.Flush()
	if t := by["spam"]; t != nil && t.spamOnly > 0 {
		fmt.Fprintf(w, "\nspam: %d of %d are kept silent only by SES's spam verdict (FAIL here, as the corpus files them as spam).\n", t.spamOnly, t.total)
	}
	if len(wrongFiles) > 0 {
		fmt.Fprintf(w, "\nAnswered, but must not be:\n%s\n", strings.Join(wrongFiles, "\n"))
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\nNot decided:\n%s\n", strings.Join(failures, "\n"))
	}
	return wrong + len(failures)
}
