package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/mailroom/mailroom/shared/mail/mailtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

func fixtures(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return names
}

func toJSON(t testing.TB, m *Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden compares the parse of every testdata/*.eml with its .golden file.
func TestGolden(t *testing.T) {
	for _, name := range fixtures(t) {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, raw, m)
			got := toJSON(t, m)
			golden := strings.TrimSuffix(name, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("parse differs from %s (run go test -update and review the diff)\ngot:\n%s", golden, got)
			}
		})
	}
}

// checkInvariants holds for any input, however broken.
func checkInvariants(t testing.TB, raw []byte, m *Message) {
	t.Helper()
	if m.Size != int64(len(raw)) {
		t.Errorf("Size = %d, want %d", m.Size, len(raw))
	}
	sum := sha256.Sum256(raw)
	if m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 = %s, want %x", m.SHA256, sum)
	}
	if m.ContentType == "" {
		t.Error("ContentType is empty")
	}
	if !m.Date.IsZero() && m.Date.Location().String() != "UTC" {
		t.Errorf("Date %v is not in UTC", m.Date)
	}
	strs := []string{m.MessageID, m.Subject, m.ContentType, m.ContentLanguage}
	strs = append(strs, m.InReplyTo...)
	strs = append(strs, m.References...)
	for _, list := range [][]Address{m.From, m.ReplyTo, m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			strs = append(strs, a.Name, a.Address)
		}
	}
	for k, v := range m.ContentTypeParams {
		strs = append(strs, k, v)
	}
	for _, f := range m.Header {
		strs = append(strs, f.Name, f.Value)
	}
	for _, a := range m.Attachments {
		strs = append(strs, a.Part, a.Filename, a.ContentType, a.Disposition, a.ContentID)
		if len(a.SHA256) != 64 {
			t.Errorf("attachment %s has SHA256 %q", a.Part, a.SHA256)
		}
	}
	for _, p := range m.Problems {
		strs = append(strs, p.Code, p.Part, p.Detail)
		if p.Code == "parse-failed" {
			t.Errorf("the parser panicked: %s", p.Detail)
		}
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("invalid UTF-8 in output: %q", s)
		}
	}
	if len(m.Problems) > maxProblems+1 || len(m.Attachments) > 2*maxParts {
		t.Errorf("%d problems, %d attachments: limits not applied", len(m.Problems), len(m.Attachments))
	}
}

// TestCleanMessages checks that ordinary mail gets no problems at all.
func TestCleanMessages(t *testing.T) {
	clean := map[string][]byte{}
	for _, name := range []string{"plain", "alternative-inline-image", "attachment-names", "nested-message",
		"delivery-report", "digest", "cr-only", "mixed-line-endings"} {
		raw, err := os.ReadFile("testdata/" + name + ".eml")
		if err != nil {
			t.Fatal(err)
		}
		clean[name] = raw
	}
	for _, kind := range mailtest.Kinds {
		clean["mailtest-"+kind] = mailtest.Generate(kind, 50<<10)
	}
	for name, raw := range clean {
		m, err := Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Problems) > 0 {
			t.Errorf("%s: got problems %+v, want none", name, m.Problems)
		}
	}
}

// TestStreaming parses every fixture one byte per Read, and through readers that return data
// early or with the error, and wants the same result as from a single buffer.
func TestStreaming(t *testing.T) {
	for _, name := range fixtures(t) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		whole, _ := Parse(bytes.NewReader(raw))
		want := toJSON(t, whole)
		for rname, r := range map[string]io.Reader{
			"one-byte":   iotest.OneByteReader(bytes.NewReader(raw)),
			"half":       iotest.HalfReader(bytes.NewReader(raw)),
			"data-err":   iotest.DataErrReader(bytes.NewReader(raw)),
			"zero-reads": &retryReader{r: iotest.OneByteReader(bytes.NewReader(raw))},
		} {
			m, err := Parse(r)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, rname, err)
			}
			if got := toJSON(t, m); !bytes.Equal(got, want) {
				t.Errorf("%s read with %s differs from a whole read:\n%s\nwant:\n%s", name, rname, got, want)
			}
		}
	}
}

// retryReader returns (0, nil) between reads, which io.Reader allows.
type retryReader struct {
	r    io.Reader
	skip bool
}

func (r *retryReader) Read(p []byte) (int, error) {
	if r.skip = !r.skip; r.skip {
		return 0, nil
	}
	return r.r.Read(p)
}

func TestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := iotest.TimeoutReader(bytes.NewReader([]byte("Subject: x\r\n\r\nbody")))
	if _, err := Parse(r); err == nil {
		t.Fatal("Parse of a failing reader returned no error")
	}
	_, err := Parse(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("Parse error = %v, want it to wrap %v", err, boom)
	}
}
