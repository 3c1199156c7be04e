package export

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestZipAcrossParts writes a zip the way an export does, across parts whose entries are kept
// compacted in between and a central directory written at the end (itself cut into parts), and
// reads it back with archive/zip: with classic records, and with ZIP64 ones as a file past
// 4 GiB or 65,535 entries has them.
func TestZipAcrossParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	contents := []string{"", "Subject: x\r\n\r\nhello\r\n", random(100 << 10), strings.Repeat("compressible ", 5000), random(3)}
	mod := time.Date(2026, 11, 23, 9, 30, 11, 0, time.UTC)
	for _, force64 := range []bool{false, true} {
		for _, dirPart := range []int{1 << 30, 64} {
			t.Run(fmt.Sprintf("zip64=%v,directory-part=%d", force64, dirPart), func(t *testing.T) {
				var file, buf bytes.Buffer
				z := newZipWriter(&buf, 0)
				z.force64 = force64
				var saved [][]byte
				for i, c := range contents {
					if err := z.add(fmt.Sprintf("%d.eml", i), mod.Add(time.Duration(i)*time.Hour), strings.NewReader(c)); err != nil {
						t.Fatal(err)
					}
					if i == 1 || i == 3 { // a part ends here
						n := int64(buf.Len())
						file.Write(buf.Bytes())
						buf.Reset()
						saved = append(saved, z.cut(n))
					}
				}
				err := z.centralDirectory(func(fn func([]byte) error) error {
					for _, s := range saved {
						if err := fn(s); err != nil {
							return err
						}
					}
					return nil
				}, dirPart, func() (int64, error) {
					n := int64(buf.Len())
					file.Write(buf.Bytes())
					buf.Reset()
					return n, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				file.Write(buf.Bytes())

				zr, err := zip.NewReader(bytes.NewReader(file.Bytes()), int64(file.Len()))
				if err != nil {
					t.Fatal(err)
				}
				if len(zr.File) != len(contents) {
					t.Fatalf("%d entries, want %d", len(zr.File), len(contents))
				}
				for i, f := range zr.File {
					if f.Name != fmt.Sprintf("%d.eml", i) || !f.Modified.Equal(mod.Add(time.Duration(i)*time.Hour)) {
						t.Errorf("entry %d: %s modified %v", i, f.Name, f.Modified)
					}
					rc, err := f.Open()
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || string(got) != contents[i] {
						t.Errorf("entry %d: %d bytes, want %d (%v)", i, len(got), len(contents[i]), err)
					}
				}
			})
		}
	}
}

func TestEntriesEncoding(t *testing.T) {
	in := []zipEntry{
		{name: "20261123T093011Z-a.eml", mod: time.Unix(1795000000, 0).UTC(), crc: 0xdeadbeef, csize: 10, usize: 20, offset: 0},
		{name: "b", mod: time.Unix(0, 0).UTC(), crc: 1, csize: 1 << 33, usize: 5, offset: 1 << 40},
	}
	var out []zipEntry
	if err := decodeEntries(encodeEntries(in), func(e zipEntry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("decoded %v, want %v", out, in)
	}
	if err := decodeEntries([]byte("damaged"), func(zipEntry) error { return nil }); err == nil {
		t.Error("damaged records decoded")
	}
}
