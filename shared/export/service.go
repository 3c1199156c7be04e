package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mbox"
)

// Formats of an export.
const (
	FormatMbox = "mbox" // one mbox file (mboxrd; see package mbox)
	FormatZip  = "zip"  // a zip of .eml files, <received>-<id>.eml, deflated
)

// Selection is what is exported: one mailbox's mail, one group's, or one search's result.
type Selection struct {
	Mailbox string `json:"mailbox,omitempty"`
	Group   string `json:"group,omitempty"`
	// Search is an archive search as the search API takes it (its query as JSON).
	Search string `json:"search,omitempty"`
	// From and To bound the time of receipt, for a mailbox or a group.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

func (a Selection) same(b Selection) bool {
	return a.Mailbox == b.Mailbox && a.Group == b.Group && a.Search == b.Search && a.From.Equal(b.From) && a.To.Equal(b.To)
}

// Request asks for an export.
type Request struct {
	// ID names the job; a new one when empty. Asking again with the same id and the same
	// selection and format returns the job already there.
	ID        string
	Selection Selection
	Format    string
}

// ExportState is an export's progress. Everything up to Offset is in uploaded parts, and the
// listing position After is the last message in them: a resumed export starts there.
type ExportState struct {
	Selection Selection `json:"selection"`
	Format    string    `json:"format"`
	Listing   Listing   `json:"listing"`
	Key       string    `json:"key"`
	Filename  string    `json:"filename"`
	UploadID  string    `json:"uploadId,omitempty"`
	Parts     int       `json:"parts"`
	Offset    int64     `json:"offset"`
	After     string    `json:"after,omitempty"`
	Messages  int       `json:"messages"`
	// Missing counts listed messages gone before they were read (destroyed by retention).
	Missing int   `json:"missing,omitempty"`
	Size    int64 `json:"size,omitempty"`
	// Completing says every part is uploaded and the upload is being completed; Final are the
	// ETags of the parts after the saved ones.
	Completing bool     `json:"completing,omitempty"`
	Final      []string `json:"final,omitempty"`
}

// Download is a finished export's link.
type Download struct {
	URL      string    `json:"url"`
	Expires  time.Time `json:"expires"`
	Filename string    `json:"filename"`
	Size     int64     `json:"size"`
	Messages int       `json:"messages"`
	Missing  int       `json:"missing,omitempty"`
}

// Service exports archived mail. Every message is streamed from S3 into a part buffer and the
// buffer uploaded as a part of a multipart upload once it holds PartSize bytes, always at a
// message's end: the job state saved with each part says which message comes next, so an
// invocation that stops (its time is up, it failed) loses at most the part it was filling, and
// the next one continues with no message twice. Memory is the part buffer plus one message in
// passing, however many messages there are.
//
// Failure policy: a transient failure (S3 or DynamoDB unavailable, a read cut off three times)
// leaves the job running and the upload open for the next invocation; anything else fails the
// job and aborts the upload, and so does the bucket's lifecycle rule for an upload left
// unfinished (MailBucket: two days).
type Service struct {
	Listings Listings
	// Search opens the pages of an archive search; nil refuses search exports.
	Search  Searches
	Records Records
	Objects Objects
	Uploads Uploads
	Jobs    Jobs
	Links   Links
	Groups  Groups
	// Prefix is where exports are written, e.g. "exports/".
	Prefix string
	// PartSize is the size at which a part is cut; default DefaultPartSize, at least
	// MinPartSize. A part holds PartSize bytes and the rest of the message that crossed it.
	PartSize int
	// Prefetch is how many originals are opened ahead of the one being written; default 8.
	Prefetch int
	// LinkTTL is how long a download link works; default 24 hours, at most 7 days.
	LinkTTL time.Duration
	Now     func() time.Time
	NewID   func() string
}

// DefaultPartSize is the part size of exports: 10,000 parts make an 80 GB export.
const DefaultPartSize = 8 << 20

// Start checks a request and creates its job. Run does the work.
func (s *Service) Start(ctx context.Context, req Request) (Job, error) {
	const op = "export.Start"
	sel := req.Selection
	named := 0
	for _, v := range []string{sel.Mailbox, sel.Group, sel.Search} {
		if v != "" {
			named++
		}
	}
	if named != 1 {
		return Job{}, fault.InvalidField(op, "selection", "name one mailbox, one group or one search")
	}
	format := req.Format
	if format == "" {
		format = FormatMbox
	}
	if format != FormatMbox && format != FormatZip {
		return Job{}, fault.InvalidField(op, "format", "%q is not an export format (mbox, zip)", format)
	}
	if !sel.From.IsZero() && !sel.To.IsZero() && sel.To.Before(sel.From) {
		return Job{}, fault.InvalidField(op, "to", "the end is before the start")
	}
	sel.From, sel.To = sel.From.UTC(), sel.To.UTC()
	l := Listing{From: sel.From, To: sel.To}
	var what string
	switch {
	case sel.Mailbox != "":
		addr, err := directory.NormalizeAddress(sel.Mailbox)
		if err != nil {
			return Job{}, fault.InvalidField(op, "mailbox", "%v", err)
		}
		sel.Mailbox, what = addr, addr
		l.Mailboxes = []string{addr}
	case sel.Group != "":
		// A group's mail is what reached its addresses; its own listing holds what came
		// through it in other ways (rules, nested groups) once that is recorded.
		g, err := s.Groups.Group(ctx, sel.Group)
		if err != nil {
			return Job{}, err
		}
		for _, a := range g.Addresses {
			l.Mailboxes = append(l.Mailboxes, strings.ToLower(a))
		}
		l.Groups, what = []string{g.ID}, "group-"+g.ID
	default:
		if s.Search == nil {
			return Job{}, fault.InvalidField(op, "search", "exports of search results are not available here")
		}
		if !sel.From.IsZero() || !sel.To.IsZero() {
			return Job{}, fault.InvalidField(op, "from", "a search carries its own time range")
		}
		if _, err := s.Search(sel.Search); err != nil {
			return Job{}, err
		}
		l.Search, what = sel.Search, "search"
	}
	id := req.ID
	if id == "" {
		id = s.newID()
	}
	if !idPattern.MatchString(id) {
		return Job{}, fault.InvalidField(op, "id", "%q is not a valid job id", id)
	}
	now := s.now()
	job := Job{
		ID: id, Kind: KindExport, State: StateRunning, CreatedAt: now, UpdatedAt: now,
		Export: &ExportState{
			Selection: sel, Format: format, Listing: l,
			Key:      s.Prefix + id + "." + format,
			Filename: fmt.Sprintf("%s-%s.%s", what, now.Format("2006-01-02"), format),
		},
	}
	return create(ctx, s.Jobs, op, job, func(old Job) bool {
		return old.Export != nil && old.Export.Format == format && old.Export.Selection.same(sel)
	})
}

// Get returns an export's job.
func (s *Service) Get(ctx context.Context, id string) (Job, error) {
	return s.Jobs.Get(ctx, KindExport, id)
}

// Run works on an export until it is done, or stops at the first part boundary after until
// (zero: no limit) and leaves the rest to another call. It returns the job as saved. An error
// that leaves the job running (transient, or another invocation holds it) means "call again".
// A function passes its deadline less the time to fill and upload a part (a minute is ample):
// work past until that was not uploaded when the invocation ends is done again by the next.
func (s *Service) Run(ctx context.Context, id string, until time.Time) (Job, error) {
	job, err := s.Jobs.Get(ctx, KindExport, id)
	if err != nil {
		return Job{}, err
	}
	if job.State != StateRunning {
		return job, nil
	}
	if job.Export == nil {
		return job, fault.New(fault.Internal, "export.Run", "job %s has no export state", id)
	}
	r := &exportRun{s: s, job: &job, st: job.Export, until: until, runner: s.newID()}
	if err := claim(ctx, s.Jobs, &job, r.runner, s.now(), until); err != nil {
		return job, err
	}
	err = r.run(ctx)
	if err == nil || retryable(err) {
		release(ctx, s.Jobs, &job, r.runner, s.now())
		return job, err
	}
	if job.Export.UploadID != "" {
		// The parts cost storage until the upload goes; the lifecycle rule would abort it too.
		_ = s.Uploads.AbortUpload(ctx, job.Export.Key, job.Export.UploadID)
	}
	return job, fail(ctx, s.Jobs, &job, err, s.now())
}

// Link returns a download link for a finished export.
func (s *Service) Link(ctx context.Context, id string) (Download, error) {
	const op = "export.Link"
	job, err := s.Jobs.Get(ctx, KindExport, id)
	if err != nil {
		return Download{}, err
	}
	switch job.State {
	case StateFailed:
		return Download{}, fault.New(fault.Conflict, op, "the export failed: %s", job.Error)
	case StateRunning:
		return Download{}, fault.New(fault.Conflict, op, "the export is not finished: %d messages so far", job.Export.Messages)
	}
	ttl := s.LinkTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	expires := s.now().Add(ttl)
	url, err := s.Links.Link(ctx, job.Export.Key, expires)
	if err != nil {
		return Download{}, err
	}
	st := job.Export
	return Download{URL: url, Expires: expires, Filename: st.Filename, Size: st.Size, Messages: st.Messages, Missing: st.Missing}, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return randomID()
}

func (s *Service) partSize() int {
	if s.PartSize <= 0 {
		return DefaultPartSize
	}
	return max(s.PartSize, MinPartSize)
}

func (s *Service) open(ctx context.Context, l Listing, after string) (Source, error) {
	if l.Search == "" {
		return s.Listings.Open(ctx, l, after)
	}
	if s.Search == nil {
		return nil, fault.New(fault.Internal, "export.open", "no search is wired for a search export")
	}
	pages, err := s.Search(l.Search)
	if err != nil {
		return nil, err
	}
	return Paged(pages, after)
}

// exportRun is one invocation's work on an export.
type exportRun struct {
	s      *Service
	job    *Job
	st     *ExportState
	until  time.Time
	runner string

	buf *bytes.Buffer
	mw  *mbox.Writer
	zw  *zipWriter
	// pending is what buf holds beyond the saved state.
	pending struct {
		after             string
		messages, missing int
	}
}

func (r *exportRun) run(ctx context.Context) error {
	if r.st.Completing {
		var etags []string
		err := r.s.Jobs.Parts(ctx, KindExport, r.job.ID, func(p Part) error {
			if p.Number <= r.st.Parts {
				etags = append(etags, p.ETag)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return r.complete(ctx, etags)
	}
	src, err := r.s.open(ctx, r.st.Listing, r.st.After)
	if err != nil {
		return err
	}
	size := r.s.partSize()
	r.buf = bytes.NewBuffer(make([]byte, 0, size+1<<20))
	if r.st.Format == FormatZip {
		r.zw = newZipWriter(r.buf, r.st.Offset)
	} else {
		r.mw = mbox.NewWriter(r.buf)
	}
	r.pending.after = r.st.After
	prefetch := r.s.Prefetch
	if prefetch <= 0 {
		prefetch = 8
	}
	fetch := newFetcher(ctx, r.s.Objects, prefetch)
	defer fetch.close()
	for {
		entries, done, err := src.Next(ctx)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			ids := make([]string, len(entries))
			for i, e := range entries {
				ids[i] = e.ID
			}
			recs, err := r.s.Records.Records(ctx, ids)
			if err != nil {
				return err
			}
			var keys []string
			for _, e := range entries {
				if rec, ok := recs[e.ID]; ok {
					keys = append(keys, rec.Key)
				}
			}
			fetch.add(keys)
			for _, e := range entries {
				rec, ok := recs[e.ID]
				if !ok {
					r.pending.missing++
				} else {
					body, err := fetch.next()
					if err := r.add(ctx, rec, body, err); err != nil {
						return err
					}
				}
				r.pending.after = e.After
				if r.full(size) {
					if err := r.cut(ctx); err != nil {
						return err
					}
					if !r.until.IsZero() && r.s.now().After(r.until) {
						return nil
					}
				}
			}
		}
		if done {
			return r.finish(ctx)
		}
	}
}

// maxPartEntries bounds a zip part's entries, whose records are saved with it in one
// transaction (at most 4 MB): only a part of very small messages gets there.
const maxPartEntries = 40000

// full reports whether the buffer is to be cut into a part.
func (r *exportRun) full(size int) bool {
	return r.buf.Len() >= size || (r.zw != nil && len(r.zw.entries) >= maxPartEntries && r.buf.Len() >= MinPartSize)
}

// add writes one message, opening it again after a failed read (three attempts in all): what a
// failed attempt wrote is taken back out of the buffer first.
func (r *exportRun) add(ctx context.Context, rec archive.Record, body io.ReadCloser, openErr error) error {
	const op = "export.add"
	mark, entries := r.buf.Len(), 0
	if r.zw != nil {
		entries = len(r.zw.entries)
	}
	var err error
	for attempt := 1; ; attempt++ {
		if body == nil && openErr == nil {
			body, _, openErr = r.s.Objects.Open(ctx, rec.Key)
		}
		switch {
		case fault.Is(openErr, fault.NotFound):
			r.pending.missing++ // destroyed since it was listed
			return nil
		case openErr != nil && !fault.Is(openErr, fault.Transient):
			return openErr
		case openErr != nil:
			err, openErr = openErr, nil
		default:
			if r.zw != nil {
				name := rec.ReceivedAt.UTC().Format("20060102T150405Z") + "-" + rec.ID + ".eml"
				err = r.zw.add(name, rec.ReceivedAt, body)
			} else {
				_, err = r.mw.WriteMessage(mbox.Envelope{Sender: rec.EnvelopeFrom, Date: rec.ReceivedAt}, body)
			}
			body.Close()
			body = nil
			if err == nil {
				r.pending.messages++
				return nil
			}
			r.buf.Truncate(mark)
			if r.zw != nil {
				r.zw.drop(entries)
			}
		}
		if attempt == 3 || ctx.Err() != nil {
			return fault.Wrap(fault.Transient, op, fmt.Errorf("read %s: %w", rec.Key, err))
		}
	}
}

// cut uploads the buffer as the next part and saves the job with it.
func (r *exportRun) cut(ctx context.Context) error {
	const op = "export.cut"
	if r.st.Parts+1 >= MaxParts { // the last number is kept for the final part
		return fault.New(fault.Invalid, op, "the export is larger than %d parts of %d MiB: export a shorter time range", MaxParts, r.s.partSize()>>20)
	}
	if err := r.ensureUpload(ctx); err != nil {
		return err
	}
	n := r.buf.Len()
	etag, err := r.s.Uploads.UploadPart(ctx, r.st.Key, r.st.UploadID, r.st.Parts+1, r.buf.Bytes())
	if err != nil {
		return r.uploadGone(ctx, err)
	}
	part := &Part{Number: r.st.Parts + 1, ETag: etag, Size: int64(n)}
	if r.zw != nil {
		part.Entries = r.zw.cut(int64(n))
	}
	prev := *r.st
	st := r.st
	st.Parts++
	st.Offset += int64(n)
	st.After = r.pending.after
	st.Messages += r.pending.messages
	st.Missing += r.pending.missing
	if err := save(ctx, r.s.Jobs, r.job, part, r.s.now(), r.until); err != nil {
		*st = prev
		return err
	}
	r.buf.Reset()
	r.pending.messages, r.pending.missing = 0, 0
	return nil
}

// ensureUpload starts the multipart upload the first time a part is needed, and saves its id,
// so that an upload is never left behind unknown to the job.
func (r *exportRun) ensureUpload(ctx context.Context) error {
	if r.st.UploadID != "" {
		return nil
	}
	contentType := "application/mbox"
	if r.st.Format == FormatZip {
		contentType = "application/zip"
	}
	id, err := r.s.Uploads.CreateUpload(ctx, r.st.Key, contentType, r.st.Filename)
	if err != nil {
		return err
	}
	r.st.UploadID = id
	if err := save(ctx, r.s.Jobs, r.job, nil, r.s.now(), r.until); err != nil {
		_ = r.s.Uploads.AbortUpload(ctx, r.st.Key, id)
		r.st.UploadID = ""
		return err
	}
	return nil
}

// finish writes what is left (for a zip, its central directory) and completes the upload; an
// export small enough for one part is written with one request instead.
func (r *exportRun) finish(ctx context.Context) error {
	var etags, extra []string
	saved := func(fn func(entries []byte) error) error {
		return r.s.Jobs.Parts(ctx, KindExport, r.job.ID, func(p Part) error {
			if p.Number > r.st.Parts {
				return nil
			}
			etags = append(etags, p.ETag)
			return fn(p.Entries)
		})
	}
	if r.zw != nil {
		// The directory's own parts need not be saved: they are made again, the same, from the
		// saved state should this invocation stop before the upload completes.
		flush := func() (int64, error) {
			if err := r.ensureUpload(ctx); err != nil {
				return 0, err
			}
			etag, err := r.s.Uploads.UploadPart(ctx, r.st.Key, r.st.UploadID, r.st.Parts+len(extra)+1, r.buf.Bytes())
			if err != nil {
				return 0, r.uploadGone(ctx, err)
			}
			extra = append(extra, etag)
			n := int64(r.buf.Len())
			r.buf.Reset()
			return n, nil
		}
		if err := r.zw.centralDirectory(saved, r.s.partSize(), flush); err != nil {
			return err
		}
	} else if err := saved(func([]byte) error { return nil }); err != nil {
		return err
	}
	if len(etags) != r.st.Parts {
		return fault.New(fault.Internal, "export.finish", "the job state counts %d parts, %d are saved", r.st.Parts, len(etags))
	}
	total := r.st.Offset + int64(r.buf.Len())
	if r.zw != nil {
		total = r.zw.base + int64(r.buf.Len())
	}
	// The totals go into the state only with the save that records the export's end, so that a
	// failure before it leaves the state as saved for the next invocation.
	final := *r.st
	final.After = r.pending.after
	final.Messages += r.pending.messages
	final.Missing += r.pending.missing
	final.Size = total
	if final.UploadID == "" {
		if err := r.s.Uploads.PutFile(ctx, final.Key, r.buf.Bytes(), r.contentType(), final.Filename); err != nil {
			return err
		}
		return r.done(ctx, &final)
	}
	if r.buf.Len() > 0 {
		etag, err := r.s.Uploads.UploadPart(ctx, final.Key, final.UploadID, len(etags)+len(extra)+1, r.buf.Bytes())
		if err != nil {
			return r.uploadGone(ctx, err)
		}
		extra = append(extra, etag)
	}
	// Completing is the one step that cannot be done twice: the parts it needs beyond the saved
	// ones are saved first, so that an invocation stopped after it knows to only look.
	final.Completing, final.Final = true, extra
	prev := *r.st
	*r.st = final
	if err := save(ctx, r.s.Jobs, r.job, nil, r.s.now(), r.until); err != nil {
		*r.st = prev
		return err
	}
	return r.complete(ctx, etags)
}

// complete completes the upload, whose parts are the saved ones (etags) and the job's Final.
func (r *exportRun) complete(ctx context.Context, etags []string) error {
	st := r.st
	all := append(append([]string(nil), etags...), st.Final...)
	err := r.s.Uploads.CompleteUpload(ctx, st.Key, st.UploadID, all)
	if fault.Is(err, fault.NotFound) {
		// Gone: completed by an invocation that stopped before it could say so, if the export
		// is there.
		if body, _, oerr := r.s.Objects.Open(ctx, st.Key); oerr == nil {
			body.Close()
			err = nil
		}
	}
	if err != nil {
		return r.uploadGone(ctx, err)
	}
	return r.done(ctx, st)
}

// done saves the job as done with the final state st.
func (r *exportRun) done(ctx context.Context, st *ExportState) error {
	saved := *r.job
	final := *st
	saved.Export = &final
	saved.State, saved.Runner, saved.LeaseUntil, saved.UpdatedAt = StateDone, "", time.Time{}, r.s.now()
	if err := r.s.Jobs.Save(ctx, &saved, nil); err != nil {
		return err
	}
	*r.job = saved
	r.st = saved.Export
	return nil
}

func (r *exportRun) contentType() string {
	if r.st.Format == FormatZip {
		return "application/zip"
	}
	return "application/mbox"
}

// uploadGone explains an upload that no longer exists: aborted by the bucket's lifecycle rule
// because the export stood unfinished for too long.
func (r *exportRun) uploadGone(ctx context.Context, err error) error {
	if !fault.Is(err, fault.NotFound) {
		return err
	}
	return fault.New(fault.Invalid, "export.upload", "the export's upload is gone (unfinished for longer than the bucket keeps uploads): start the export again")
}
