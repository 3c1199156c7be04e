// Package export moves archived mail in and out of Mailroom: exports of a mailbox, a group or a
// search result as an mbox file or a zip of .eml files, streamed into S3 a part at a time and
// handed out as an expiring link; imports of mbox files from other mail systems; and restores,
// which deliver an archived message to a mailbox again. Exports and imports keep their state
// between invocations, so that one far larger than a function's memory or time still finishes.
package export

import (
	"context"
	"io"
	"regexp"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
)

// Job kinds.
const (
	KindExport = "export"
	KindImport = "import"
)

// Job states.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Job is an export's or an import's state, saved after every step that must not be done twice,
// so that the next invocation continues where the last one stopped.
type Job struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	// Error says why a failed job failed, in words safe to show its caller.
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Version counts saves; each save is conditional on the version it read, so two invocations
	// cannot both advance a job.
	Version int64 `json:"version"`
	// Runner is the invocation working on the job, until LeaseUntil; another one waits.
	Runner     string    `json:"runner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`

	Export *ExportState `json:"export,omitempty"`
	Import *ImportState `json:"import,omitempty"`
}

// Part is one uploaded part of an export, saved with the job's state: its ETag, for completing
// the upload, and for a zip the central-directory records of the entries in it, compacted.
type Part struct {
	Number  int
	ETag    string
	Size    int64
	Entries []byte
}

// Jobs keeps jobs (DynamoDB state table).
type Jobs interface {
	// Create stores a new job, or fails with fault.Conflict when one with its kind and id exists.
	Create(ctx context.Context, j Job) error
	// Get returns a job, or a fault.NotFound error.
	Get(ctx context.Context, kind, id string) (Job, error)
	// Save writes j on condition that the stored version is j.Version, and the part with it
	// when part is not nil, in one transaction; on success j.Version is one more. A lost race is
	// a fault.Conflict error.
	Save(ctx context.Context, j *Job, part *Part) error
	// Parts calls fn with the job's saved parts, in order of their numbers.
	Parts(ctx context.Context, kind, id string, fn func(Part) error) error
}

// Objects reads archived originals (S3).
type Objects interface {
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
}

// Uploads writes exports (S3 multipart uploads). Every part but the last must hold at least
// MinPartSize bytes.
type Uploads interface {
	CreateUpload(ctx context.Context, key, contentType, filename string) (uploadID string, err error)
	UploadPart(ctx context.Context, key, uploadID string, number int, body []byte) (etag string, err error)
	CompleteUpload(ctx context.Context, key, uploadID string, etags []string) error
	AbortUpload(ctx context.Context, key, uploadID string) error
	// PutFile writes a whole export small enough for one request.
	PutFile(ctx context.Context, key string, body []byte, contentType, filename string) error
}

// Links makes expiring download links (S3 presigned URLs).
type Links interface {
	Link(ctx context.Context, key string, expires time.Time) (string, error)
}

// Records reads the archive records of listed messages (DynamoDB, a batch at a time): where
// each original is and the envelope it came with. Ids with no record are left out.
type Records interface {
	Records(ctx context.Context, ids []string) (map[string]archive.Record, error)
}

// Groups finds a group's addresses, whose mail is the group's.
type Groups interface {
	Group(ctx context.Context, id string) (directory.Group, error)
}

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// MaxParts is S3's most parts in one upload.
const MaxParts = 10000

// MaxMessageSize is the largest message imported: SES's limit on received mail.
const MaxMessageSize = 40 << 20

// idPattern is what a job id (and a restore id) may look like: it becomes part of keys.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$`)
