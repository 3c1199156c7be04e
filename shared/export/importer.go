package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/mbox"
)

// Archiver archives a message whose raw bytes are stored (archive.Service).
type Archiver interface {
	Archive(ctx context.Context, in archive.Received) (archive.Result, error)
}

// ArchiveReader reads one archive record (archive.Index).
type ArchiveReader interface {
	Get(ctx context.Context, id string) (archive.Record, error)
}

// ImportObjects is what an import needs of S3: the mbox, read from where a stopped import left
// off, and the raw copies of its messages, which the archive copies from as from SES's.
type ImportObjects interface {
	OpenAt(ctx context.Context, key string, offset int64) (io.ReadCloser, int64, error)
	PutFile(ctx context.Context, key string, body []byte, contentType, filename string) error
	Exists(ctx context.Context, key string) (bool, error)
}

// Report says what an import did with each message of its mbox.
type Report struct {
	Imported int `json:"imported"`
	// Duplicates were in the archive already: the same bytes imported into the same mailbox
	// before, or earlier in the same file.
	Duplicates int `json:"duplicates"`
	// Flagged messages are imported, with the problems parsing found flagged on their records.
	Flagged int       `json:"flagged"`
	Failed  []Failure `json:"failed"`
	// FailedMore counts failures past the first MaxFailures, which alone are listed.
	FailedMore int `json:"failedMore,omitempty"`
}

// Failure is a message that was not imported.
type Failure struct {
	// Index is the message's number in the mbox, from 1; Offset is where its separator line is.
	Index  int    `json:"index"`
	Offset int64  `json:"offset"`
	Reason string `json:"reason"`
}

// MaxFailures is the most failures a report lists.
const MaxFailures = 1000

func (r *Report) fail(index int, offset int64, reason string) {
	if len(r.Failed) >= MaxFailures {
		r.FailedMore++
		return
	}
	r.Failed = append(r.Failed, Failure{Index: index, Offset: offset, Reason: reason})
}

// ImportRequest asks for the import of an mbox file in the bucket into a mailbox.
type ImportRequest struct {
	// ID names the job; a new one when empty.
	ID      string
	Key     string
	Mailbox string
}

// ImportState is an import's progress: every message before Offset in the mbox is done.
type ImportState struct {
	Key     string `json:"key"`
	Mailbox string `json:"mailbox"`
	Offset  int64  `json:"offset"`
	Index   int    `json:"index"`
	Size    int64  `json:"size,omitempty"`
	Report  Report `json:"report"`
	// SavedAt is when Offset was last saved: a message archived since then with this job's
	// id is one an invocation that stopped imported, not a duplicate.
	SavedAt time.Time `json:"savedAt"`
}

func (st *ImportState) clone() *ImportState {
	c := *st
	c.Report.Failed = slices.Clone(st.Report.Failed)
	return &c
}

// Importer archives the messages of mbox files as if received: each one's raw bytes are stored
// under RawPrefix, as SES stores what it receives, and archived from there, for the mailbox
// the file is imported into. A message's archive id is derived from its bytes and the mailbox,
// so importing a file again, or a message twice, recognises the duplicates and adds nothing.
type Importer struct {
	Archive Archiver
	Index   ArchiveReader
	Objects ImportObjects
	Jobs    Jobs
	// RawPrefix is where the raw messages are stored, e.g. "inbound/": the bucket expires
	// them there once they are archived.
	RawPrefix string
	// MaxSize is the largest message imported; default MaxMessageSize.
	MaxSize int64
	// Checkpoint is how often a running import saves where it is; default every 10 seconds.
	Checkpoint time.Duration
	Now        func() time.Time
	NewID      func() string
}

// Import archives every message read from r, an mbox file, for mailbox, in one call: for files
// that fit in an invocation (the CLI, tests). Start and Run import from the bucket and continue
// across invocations.
func (s *Importer) Import(ctx context.Context, mailbox string, r io.Reader) (Report, error) {
	addr, err := directory.NormalizeAddress(mailbox)
	if err != nil {
		return Report{}, fault.InvalidField("export.Import", "mailbox", "%v", err)
	}
	st := &ImportState{Mailbox: addr, SavedAt: s.now(), Report: Report{Failed: []Failure{}}}
	err = s.run(ctx, st, r, time.Time{}, nil)
	return st.Report, err
}

// Start checks an import request and creates its job; Run does the work.
func (s *Importer) Start(ctx context.Context, req ImportRequest) (Job, error) {
	const op = "export.StartImport"
	addr, err := directory.NormalizeAddress(req.Mailbox)
	if err != nil {
		return Job{}, fault.InvalidField(op, "mailbox", "%v", err)
	}
	if req.Key == "" {
		return Job{}, fault.InvalidField(op, "key", "name the mbox file in the bucket")
	}
	if ok, err := s.Objects.Exists(ctx, req.Key); err != nil {
		return Job{}, err
	} else if !ok {
		return Job{}, fault.InvalidField(op, "key", "no file %q in the bucket", req.Key)
	}
	id := req.ID
	if id == "" {
		id = s.newID()
	}
	if !idPattern.MatchString(id) {
		return Job{}, fault.InvalidField(op, "id", "%q is not a valid job id", id)
	}
	now := s.now()
	job := Job{ID: id, Kind: KindImport, State: StateRunning, CreatedAt: now, UpdatedAt: now,
		Import: &ImportState{Key: req.Key, Mailbox: addr, SavedAt: now, Report: Report{Failed: []Failure{}}}}
	return create(ctx, s.Jobs, op, job, func(old Job) bool {
		return old.Import != nil && old.Import.Key == req.Key && old.Import.Mailbox == addr
	})
}

// Get returns an import's job; its report says what was imported so far.
func (s *Importer) Get(ctx context.Context, id string) (Job, error) {
	return s.Jobs.Get(ctx, KindImport, id)
}

// Run imports until the file's end, or stops at the first message after until (zero: no
// limit), saving where it is, and leaves the rest to another call. An error that leaves the job
// running means "call again".
func (s *Importer) Run(ctx context.Context, id string, until time.Time) (Job, error) {
	job, err := s.Jobs.Get(ctx, KindImport, id)
	if err != nil {
		return Job{}, err
	}
	if job.State != StateRunning {
		return job, nil
	}
	if job.Import == nil {
		return job, fault.New(fault.Internal, "export.RunImport", "job %s has no import state", id)
	}
	runner := s.newID()
	if err := claim(ctx, s.Jobs, &job, runner, s.now(), until); err != nil {
		return job, err
	}
	// The work goes on in a copy, which a checkpoint saves: the job as saved is what a stop
	// leaves for the next invocation.
	st := job.Import.clone()
	body, size, err := s.Objects.OpenAt(ctx, st.Key, st.Offset)
	if err == nil {
		st.Size = size
		checkpoint := func(done bool) error {
			st.SavedAt = s.now()
			saved := job
			saved.Import = st.clone()
			if done {
				saved.State, saved.Runner, saved.LeaseUntil = StateDone, "", time.Time{}
			}
			if err := save(ctx, s.Jobs, &saved, nil, st.SavedAt, until); err != nil {
				return err
			}
			job = saved
			return nil
		}
		err = s.run(ctx, st, body, until, checkpoint)
		body.Close()
	}
	if err == nil || retryable(err) {
		release(ctx, s.Jobs, &job, runner, s.now())
		return job, err
	}
	return job, fail(ctx, s.Jobs, &job, err, s.now())
}

// run imports the messages of r, which starts at st.Offset of the file. checkpoint, when set,
// saves st at message boundaries (done: at the end).
func (s *Importer) run(ctx context.Context, st *ImportState, r io.Reader, until time.Time, checkpoint func(done bool) error) error {
	const op = "export.import"
	mr := mbox.NewReader(r)
	base := st.Offset
	// ids imported since the last checkpoint: a repeat among them is a duplicate in the file.
	seen := map[string]bool{}
	last := s.now()
	var buf bytes.Buffer
	done := 0 // messages this call imported: it stops only after one, so every call moves on
	every := s.Checkpoint
	if every <= 0 {
		every = 10 * time.Second
	}
	for {
		env, err := mr.Next()
		if err == io.EOF {
			if st.Size > 0 {
				st.Offset = st.Size
			}
			if checkpoint != nil {
				return checkpoint(true)
			}
			return nil
		}
		if errors.Is(err, mbox.ErrNotMbox) {
			return fault.InvalidField(op, "key", "the file is not an mbox: it does not start with a \"From \" line")
		}
		if err != nil {
			return fault.Wrap(fault.Transient, op, err)
		}
		offset := base + mr.Offset()
		if checkpoint != nil {
			now := s.now()
			stop := !until.IsZero() && now.After(until) && done > 0
			if stop || now.Sub(last) >= every {
				st.Offset = offset
				if err := checkpoint(false); err != nil {
					return err
				}
				last, seen = now, map[string]bool{}
				if stop {
					return nil
				}
			}
		}
		st.Index++
		if err := s.one(ctx, st, env, mr, &buf, offset, seen); err != nil {
			return err
		}
		done++
	}
}

// one imports one message; only errors that stop the import are returned, a message's own
// failure goes into the report.
func (s *Importer) one(ctx context.Context, st *ImportState, env mbox.Envelope, r io.Reader, buf *bytes.Buffer, offset int64, seen map[string]bool) error {
	const op = "export.import"
	rep := &st.Report
	max := s.MaxSize
	if max <= 0 {
		max = MaxMessageSize
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return fault.Wrap(fault.Transient, op, fmt.Errorf("read message %d: %w", st.Index, err))
	}
	if n > max {
		rep.fail(st.Index, offset, fmt.Sprintf("the message is larger than %d MiB, the most Mailroom archives", max>>20))
		return nil
	}
	raw := buf.Bytes()
	id := ImportID(st.Mailbox, raw)
	if seen[id] {
		rep.Duplicates++
		return nil
	}
	switch rec, err := s.Index.Get(ctx, id); {
	case err == nil:
		// Archived already, if the original is in place (else archiving again repairs it).
		ok, err := s.Objects.Exists(ctx, rec.Key)
		if err != nil {
			return err
		}
		if ok {
			s.count(st, rec, seen)
			return nil
		}
	case !fault.Is(err, fault.NotFound):
		return err
	}
	received := env.Date
	if received.Unix() <= 0 { // no date on the separator (or the epoch, written for none)
		received = headerDate(raw)
	}
	if received.IsZero() {
		received = s.now()
	}
	key := s.RawPrefix + id
	if err := s.Objects.PutFile(ctx, key, raw, "message/rfc822", ""); err != nil {
		return err
	}
	res, err := s.Archive.Archive(ctx, archive.Received{
		ID: id, RawKey: key, ReceivedAt: received, EnvelopeFrom: env.Sender,
		Recipients: []string{st.Mailbox}, Source: "import",
	})
	switch {
	case fault.Is(err, fault.Invalid):
		rep.fail(st.Index, offset, fault.MessageOf(err))
		return nil
	case err != nil:
		return err
	case res.Duplicate:
		s.count(st, res.Record, seen)
		return nil
	}
	seen[id] = true
	rep.Imported++
	if len(res.Record.Flags) > 0 {
		rep.Flagged++
	}
	return nil
}

// count reports a message found archived: imported, when this import did it after its last
// checkpoint (an invocation that stopped before saving), else a duplicate.
func (s *Importer) count(st *ImportState, rec archive.Record, seen map[string]bool) {
	seen[rec.ID] = true
	if rec.Source == "import" && !rec.ArchivedAt.Before(st.SavedAt) {
		st.Report.Imported++
		if len(rec.Flags) > 0 {
			st.Report.Flagged++
		}
		return
	}
	st.Report.Duplicates++
}

// ImportID is the archive id of a message imported into a mailbox: derived from its bytes, so a
// message imported twice is recognised, and from the mailbox, so that the same message imported
// into two mailboxes is in both.
func ImportID(mailbox string, raw []byte) string {
	body := sha256.Sum256(raw)
	h := sha256.New()
	h.Write([]byte(mailbox))
	h.Write([]byte{0})
	h.Write(body[:])
	return "import-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// headerDate is the message's Date field, or zero.
func headerDate(raw []byte) time.Time {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return time.Time{} // the header's end
		}
		if len(line) > 5 && bytes.EqualFold(line[:5], []byte("date:")) {
			value := string(line[5:])
			// Folded continuation lines.
			for len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') {
				j := bytes.IndexByte(raw, '\n')
				if j < 0 {
					j = len(raw) - 1
				}
				value += " " + string(bytes.TrimSpace(raw[:j+1]))
				raw = raw[j+1:]
			}
			t, err := mail.ParseDate(value)
			if err != nil {
				return time.Time{}
			}
			return t
		}
	}
	return time.Time{}
}

func (s *Importer) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Importer) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return randomID()
}
