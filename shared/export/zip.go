package export

// A zip written in pieces across invocations. archive/zip keeps every entry's central-directory
// record in memory until Close, and cannot continue a file another process began; here each
// entry is written as it streams (local header, deflated data, data descriptor), its record is
// kept compactly with the part it landed in, and the central directory is written at the end
// from those records. ZIP64 records are written when the count, an offset or the directory's
// size outgrows the classic fields.

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"time"
)

const (
	sigLocal      = 0x04034b50
	sigDescriptor = 0x08074b50
	sigCentral    = 0x02014b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigLocator64  = 0x07064b50

	flagDescriptor = 0x8
	methodDeflate  = 8
	version20      = 20
	version45      = 45 // ZIP64
	creatorUnix    = 3

	extraZip64     = 0x0001
	extraTimestamp = 0x5455 // the modification time in Unix seconds: DOS times have no zone

	max16 = 0xffff
	max32 = 0xffffffff
)

// zipEntry is what the central directory needs of one entry.
type zipEntry struct {
	name   string
	mod    time.Time
	crc    uint32
	csize  uint64
	usize  uint64
	offset uint64
}

// zipWriter writes entries into buf, which starts at base in the file.
type zipWriter struct {
	buf     *bytes.Buffer
	base    int64
	entries []zipEntry // the entries in buf, not yet in a saved part
	fw      *flate.Writer
	crc     crcCounter
	copyBuf []byte
	// force64 writes ZIP64 records whatever the sizes, for tests.
	force64 bool
}

func newZipWriter(buf *bytes.Buffer, base int64) *zipWriter {
	fw, _ := flate.NewWriter(nil, flate.BestSpeed)
	return &zipWriter{buf: buf, base: base, fw: fw, copyBuf: make([]byte, 32<<10)}
}

// add writes one entry read from r. On error buf holds part of it; the caller truncates buf and
// calls drop.
func (z *zipWriter) add(name string, mod time.Time, r io.Reader) error {
	e := zipEntry{name: name, mod: mod.UTC().Truncate(time.Second), offset: uint64(z.base) + uint64(z.buf.Len())}
	var h [30]byte
	date, clock := msdos(e.mod)
	binary.LittleEndian.PutUint32(h[0:], sigLocal)
	binary.LittleEndian.PutUint16(h[4:], version20)
	binary.LittleEndian.PutUint16(h[6:], flagDescriptor)
	binary.LittleEndian.PutUint16(h[8:], methodDeflate)
	binary.LittleEndian.PutUint16(h[10:], clock)
	binary.LittleEndian.PutUint16(h[12:], date)
	// CRC and sizes follow the data, in the descriptor.
	binary.LittleEndian.PutUint16(h[26:], uint16(len(name)))
	binary.LittleEndian.PutUint16(h[28:], 9)
	z.buf.Write(h[:])
	z.buf.WriteString(name)
	z.buf.Write(timestampExtra(e.mod))

	start := z.buf.Len()
	z.crc.reset()
	z.fw.Reset(z.buf)
	if _, err := io.CopyBuffer(io.MultiWriter(&z.crc, z.fw), r, z.copyBuf); err != nil {
		return err
	}
	if err := z.fw.Close(); err != nil {
		return err
	}
	e.crc, e.usize, e.csize = z.crc.sum, z.crc.n, uint64(z.buf.Len()-start)
	if e.usize >= max32 || e.csize >= max32 {
		return errors.New("zip entry over 4 GiB") // messages are at most 40 MB
	}
	var d [16]byte
	binary.LittleEndian.PutUint32(d[0:], sigDescriptor)
	binary.LittleEndian.PutUint32(d[4:], e.crc)
	binary.LittleEndian.PutUint32(d[8:], uint32(e.csize))
	binary.LittleEndian.PutUint32(d[12:], uint32(e.usize))
	z.buf.Write(d[:])
	z.entries = append(z.entries, e)
	return nil
}

// drop forgets the entries after the first n (a failed add; a rolled back message).
func (z *zipWriter) drop(n int) { z.entries = z.entries[:n] }

// cut is called when buf has been uploaded as a part: it returns that part's entries, compacted,
// and starts the next part.
func (z *zipWriter) cut(uploaded int64) []byte {
	data := encodeEntries(z.entries)
	z.entries = z.entries[:0]
	z.base += uploaded
	return data
}

// centralDirectory appends to buf the record of every entry, those of saved parts (each part's
// compacted records, in order) and then those still pending, and the end records. flush is
// called whenever buf has grown past at least partSize, so a directory of millions of entries
// is uploaded in parts too; it returns how many bytes it took from buf's front.
func (z *zipWriter) centralDirectory(saved func(fn func(entries []byte) error) error, partSize int, flush func() (int64, error)) error {
	start := uint64(z.base) + uint64(z.buf.Len())
	var count uint64
	write := func(e zipEntry) error {
		z.buf.Write(z.central(e))
		count++
		if z.buf.Len() >= partSize {
			n, err := flush()
			if err != nil {
				return err
			}
			z.base += n
		}
		return nil
	}
	if err := saved(func(data []byte) error { return decodeEntries(data, write) }); err != nil {
		return err
	}
	for _, e := range z.entries {
		if err := write(e); err != nil {
			return err
		}
	}
	end := uint64(z.base) + uint64(z.buf.Len())
	size := end - start
	need64 := z.force64 || count >= max16 || size >= max32 || start >= max32
	if need64 {
		var r [56]byte
		binary.LittleEndian.PutUint32(r[0:], sigEnd64)
		binary.LittleEndian.PutUint64(r[4:], 44) // the record's size after this field
		binary.LittleEndian.PutUint16(r[12:], creatorUnix<<8|version45)
		binary.LittleEndian.PutUint16(r[14:], version45)
		binary.LittleEndian.PutUint64(r[24:], count)
		binary.LittleEndian.PutUint64(r[32:], count)
		binary.LittleEndian.PutUint64(r[40:], size)
		binary.LittleEndian.PutUint64(r[48:], start)
		z.buf.Write(r[:])
		var l [20]byte
		binary.LittleEndian.PutUint32(l[0:], sigLocator64)
		binary.LittleEndian.PutUint64(l[8:], end)
		binary.LittleEndian.PutUint32(l[16:], 1)
		z.buf.Write(l[:])
	}
	// The classic record's fields say "see ZIP64" (all ones) when the ZIP64 records are there.
	count16, size32, start32 := uint16(count), uint32(size), uint32(start)
	if need64 {
		count16, size32, start32 = max16, max32, max32
	}
	var r [22]byte
	binary.LittleEndian.PutUint32(r[0:], sigEnd)
	binary.LittleEndian.PutUint16(r[8:], count16)
	binary.LittleEndian.PutUint16(r[10:], count16)
	binary.LittleEndian.PutUint32(r[12:], size32)
	binary.LittleEndian.PutUint32(r[16:], start32)
	z.buf.Write(r[:])
	return nil
}

// central is the central-directory record of e.
func (z *zipWriter) central(e zipEntry) []byte {
	far := z.force64 || e.offset >= max32
	extra := timestampExtra(e.mod)
	if far {
		var x [12]byte
		binary.LittleEndian.PutUint16(x[0:], extraZip64)
		binary.LittleEndian.PutUint16(x[2:], 8)
		binary.LittleEndian.PutUint64(x[4:], e.offset)
		extra = append(x[:], extra...)
	}
	version := uint16(version20)
	if far {
		version = version45
	}
	b := make([]byte, 46, 46+len(e.name)+len(extra))
	date, clock := msdos(e.mod)
	binary.LittleEndian.PutUint32(b[0:], sigCentral)
	binary.LittleEndian.PutUint16(b[4:], creatorUnix<<8|version)
	binary.LittleEndian.PutUint16(b[6:], version)
	binary.LittleEndian.PutUint16(b[8:], flagDescriptor)
	binary.LittleEndian.PutUint16(b[10:], methodDeflate)
	binary.LittleEndian.PutUint16(b[12:], clock)
	binary.LittleEndian.PutUint16(b[14:], date)
	binary.LittleEndian.PutUint32(b[16:], e.crc)
	binary.LittleEndian.PutUint32(b[20:], uint32(e.csize))
	binary.LittleEndian.PutUint32(b[24:], uint32(e.usize))
	binary.LittleEndian.PutUint16(b[28:], uint16(len(e.name)))
	binary.LittleEndian.PutUint16(b[30:], uint16(len(extra)))
	binary.LittleEndian.PutUint32(b[38:], 0o100644<<16) // a regular file, rw-r--r--
	if far {
		binary.LittleEndian.PutUint32(b[42:], max32)
	} else {
		binary.LittleEndian.PutUint32(b[42:], uint32(e.offset))
	}
	b = append(b, e.name...)
	return append(b, extra...)
}

func timestampExtra(t time.Time) []byte {
	var x [9]byte
	binary.LittleEndian.PutUint16(x[0:], extraTimestamp)
	binary.LittleEndian.PutUint16(x[2:], 5)
	x[4] = 1 // the modification time follows
	binary.LittleEndian.PutUint32(x[5:], uint32(t.Unix()))
	return x[:]
}

// msdos is t as an MS-DOS date and time (two-second steps, no zone, from 1980).
func msdos(t time.Time) (date, clock uint16) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}

// encodeEntries compacts records for the job state: about 25 bytes an entry once deflated, as
// names share their date prefixes.
func encodeEntries(entries []zipEntry) []byte {
	if len(entries) == 0 {
		return nil
	}
	raw := make([]byte, 0, len(entries)*80)
	for _, e := range entries {
		raw = binary.AppendUvarint(raw, uint64(len(e.name)))
		raw = append(raw, e.name...)
		raw = binary.AppendVarint(raw, e.mod.Unix())
		raw = binary.LittleEndian.AppendUint32(raw, e.crc)
		raw = binary.AppendUvarint(raw, e.csize)
		raw = binary.AppendUvarint(raw, e.usize)
		raw = binary.AppendUvarint(raw, e.offset)
	}
	var out bytes.Buffer
	fw, _ := flate.NewWriter(&out, flate.BestCompression)
	fw.Write(raw)
	fw.Close()
	return out.Bytes()
}

var errBadEntries = errors.New("export: damaged zip entry records in the job state")

func decodeEntries(data []byte, fn func(zipEntry) error) error {
	if len(data) == 0 {
		return nil
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
	if err != nil {
		return errBadEntries
	}
	for len(raw) > 0 {
		var e zipEntry
		n, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			return errBadEntries
		}
		e.name, raw = string(raw[k:k+int(n)]), raw[k+int(n):]
		mod, k := binary.Varint(raw)
		if k <= 0 || len(raw) < k+4 {
			return errBadEntries
		}
		e.mod, raw = time.Unix(mod, 0).UTC(), raw[k:]
		e.crc, raw = binary.LittleEndian.Uint32(raw), raw[4:]
		for _, f := range []*uint64{&e.csize, &e.usize, &e.offset} {
			v, k := binary.Uvarint(raw)
			if k <= 0 {
				return errBadEntries
			}
			*f, raw = v, raw[k:]
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// crcCounter is a CRC-32 and a byte count of what is written to it.
type crcCounter struct {
	sum uint32
	n   uint64
}

func (c *crcCounter) reset() { c.sum, c.n = 0, 0 }

func (c *crcCounter) Write(p []byte) (int, error) {
	c.sum = crc32.Update(c.sum, crc32.IEEETable, p)
	c.n += uint64(len(p))
	return len(p), nil
}
