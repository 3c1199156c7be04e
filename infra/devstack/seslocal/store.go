package seslocal

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned for a message id the server does not hold.
var ErrNotFound = errors.New("seslocal: message not found")

// Content kinds of a SendEmail request.
const (
	KindRaw    = "Raw"
	KindSimple = "Simple"
)

// Message is what the server keeps about one accepted SendEmail call. Field names match SES's own
// where SES has them; the JSON API returns exactly this shape.
type Message struct {
	MessageId string    // as returned to the caller, e.g. 0100019a…-…-000000
	Timestamp time.Time // when SES accepted it, UTC
	Region    string
	Kind      string // KindRaw or KindSimple

	// From is the author as sent (the From header, display name decoded); FromEmailAddress is the
	// request parameter, empty when a Raw message relied on its From header.
	From             string
	FromEmailAddress string `json:",omitempty"`
	// Destination is the request parameter; nil when a Raw message's headers named the recipients.
	Destination *Destination `json:",omitempty"`
	// Recipients are the envelope addresses the message was delivered to, Bcc included.
	Recipients []string
	Subject    string // decoded

	ReplyToAddresses               []string               `json:",omitempty"`
	ConfigurationSetName           string                 `json:",omitempty"`
	EmailTags                      []MessageTag           `json:",omitempty"`
	ListManagementOptions          *ListManagementOptions `json:",omitempty"`
	FeedbackForwardingEmailAddress string                 `json:",omitempty"`

	MessageIdHeader    string // the Message-ID header SES put on the message
	Size               int    // bytes as sent
	RequestContentType string // message/rfc822 for Raw, application/json for Simple
}

// Destination mirrors SES's Destination.
type Destination struct {
	ToAddresses  []string `json:",omitempty"`
	CcAddresses  []string `json:",omitempty"`
	BccAddresses []string `json:",omitempty"`
}

// MessageTag mirrors SES's MessageTag.
type MessageTag struct {
	Name  string
	Value string
}

// ListManagementOptions mirrors SES's ListManagementOptions.
type ListManagementOptions struct {
	ContactListName string
	TopicName       string `json:",omitempty"`
}

// store holds messages in memory, and with a dir also on disk. In dir mode the bytes are read from
// disk on demand so that a long-running stack does not hold every attachment in memory.
type store struct {
	dir string
	log *slog.Logger

	seq  atomic.Uint64
	mu   sync.RWMutex
	msgs map[string]*entry
}

type entry struct {
	meta    Message
	seq     uint64 // order of acceptance, to break ties of equal timestamps
	sent    []byte // memory mode only
	request []byte // memory mode only
}

// sidecar is the JSON kept next to each message in the maildir.
type sidecar struct {
	Message
	RequestPath string // relative to Dir
}

func openStore(dir string, log *slog.Logger) (*store, error) {
	st := &store{dir: dir, log: log, msgs: map[string]*entry{}}
	if dir == "" {
		return st, nil
	}
	for _, sub := range []string{"tmp", "new", "cur", "meta", "request"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("seslocal: maildir: %w", err)
		}
	}
	if err := st.reload(); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *store) reload() error {
	names, err := filepath.Glob(filepath.Join(st.dir, "meta", "*.json"))
	if err != nil {
		return fmt.Errorf("seslocal: maildir: %w", err)
	}
	var loaded []*entry
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("seslocal: maildir: %w", err)
		}
		var sc sidecar
		if err := json.Unmarshal(b, &sc); err != nil || !validID(sc.MessageId) {
			// One damaged sidecar must not keep the whole stack from starting.
			st.log.Warn("seslocal: skipping unreadable sidecar", "path", name, "err", err)
			continue
		}
		if _, err := st.sentPath(sc.MessageId); err != nil {
			st.log.Warn("seslocal: skipping sidecar without message", "path", name)
			continue
		}
		loaded = append(loaded, &entry{meta: sc.Message})
	}
	// Acceptance order is lost on disk; ids start with the acceptance time in ms, so the id is the
	// next best tie-breaker after the timestamp.
	slices.SortFunc(loaded, func(a, b *entry) int {
		return cmp.Or(a.meta.Timestamp.Compare(b.meta.Timestamp), strings.Compare(a.meta.MessageId, b.meta.MessageId))
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, e := range loaded {
		e.seq = st.seq.Add(1)
		st.msgs[e.meta.MessageId] = e
	}
	return nil
}

// validID keeps ids read from disk or URLs from naming files outside the maildir.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func requestExt(m Message) string {
	if m.RequestContentType == "application/json" {
		return ".json"
	}
	return ".eml"
}

// add stores a message. On disk the sidecar is written last: a message counts as stored once its
// sidecar exists, so a crash mid-write leaves at worst an orphan file, never a broken entry.
func (st *store) add(m Message, sent, request []byte) error {
	e := &entry{meta: m, seq: st.seq.Add(1)}
	if st.dir == "" {
		e.sent, e.request = sent, request
	} else {
		reqRel := filepath.Join("request", m.MessageId+requestExt(m))
		sc, err := json.MarshalIndent(sidecar{Message: m, RequestPath: reqRel}, "", "  ")
		if err != nil {
			return err
		}
		if err := st.writeFile(reqRel, request); err != nil {
			return err
		}
		if err := st.writeFile(filepath.Join("new", m.MessageId+".eml"), sent); err != nil {
			return err
		}
		if err := st.writeFile(filepath.Join("meta", m.MessageId+".json"), sc); err != nil {
			return err
		}
	}
	st.mu.Lock()
	st.msgs[m.MessageId] = e
	st.mu.Unlock()
	return nil
}

// writeFile writes through Dir/tmp and renames, as maildir readers expect files in new/ to be complete.
func (st *store) writeFile(rel string, b []byte) error {
	f, err := os.CreateTemp(filepath.Join(st.dir, "tmp"), "seslocal-*")
	if err != nil {
		return fmt.Errorf("seslocal: maildir: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(st.dir, rel))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("seslocal: maildir: %w", err)
	}
	return nil
}

func (st *store) list() []Message {
	st.mu.RLock()
	es := make([]*entry, 0, len(st.msgs))
	for _, e := range st.msgs {
		es = append(es, e)
	}
	st.mu.RUnlock()
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(b.meta.Timestamp.Compare(a.meta.Timestamp), cmp.Compare(b.seq, a.seq))
	})
	out := make([]Message, len(es))
	for i, e := range es {
		out[i] = e.meta
	}
	return out
}

func (st *store) lookup(id string) (*entry, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	e, ok := st.msgs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return e, nil
}

func (st *store) get(id string) (Message, error) {
	e, err := st.lookup(id)
	if err != nil {
		return Message{}, err
	}
	return e.meta, nil
}

func (st *store) sent(id string) ([]byte, error) {
	e, err := st.lookup(id)
	if err != nil {
		return nil, err
	}
	if st.dir == "" {
		return e.sent, nil
	}
	p, err := st.sentPath(id)
	if err != nil {
		return nil, err
	}
	return readStored(p)
}

func (st *store) request(id string) ([]byte, error) {
	e, err := st.lookup(id)
	if err != nil {
		return nil, err
	}
	if st.dir == "" {
		return e.request, nil
	}
	return readStored(filepath.Join(st.dir, "request", id+requestExt(e.meta)))
}

func readStored(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound // deleted meanwhile
	}
	return b, err
}

// sentPath finds the message in new/, or in cur/ where a mail client moves what it has shown,
// adding ":2,<flags>" to the name.
func (st *store) sentPath(id string) (string, error) {
	p := filepath.Join(st.dir, "new", id+".eml")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob(filepath.Join(st.dir, "cur", id+".eml*"))
	if len(matches) > 0 {
		return matches[0], nil
	}
	return "", ErrNotFound
}

func (st *store) delete(id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.msgs[id]
	if !ok {
		return ErrNotFound
	}
	delete(st.msgs, id)
	return st.removeFiles(e)
}

func (st *store) deleteAll() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	var errs []error
	for id, e := range st.msgs {
		delete(st.msgs, id)
		errs = append(errs, st.removeFiles(e))
	}
	return errors.Join(errs...)
}

// removeFiles runs under st.mu so that a concurrent reader sees either the whole message or none.
func (st *store) removeFiles(e *entry) error {
	if st.dir == "" {
		return nil
	}
	id := e.meta.MessageId
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// The sidecar goes first: without it the message is gone even if a later removal fails.
	rm(filepath.Join(st.dir, "meta", id+".json"))
	if p, err := st.sentPath(id); err == nil {
		rm(p)
	}
	rm(filepath.Join(st.dir, "request", id+requestExt(e.meta)))
	return errors.Join(errs...)
}
