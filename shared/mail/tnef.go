package mail

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/teamwork/tnef"
)

// TNEF attribute ids (MS-OXTNEF 2.1.3): the low word of the id.
const (
	tnefSignature     = 0x223e9f78
	tnefAttRendData   = 0x9002 // starts an attachment
	tnefAttMsgProps   = 0x9003 // MAPI properties
	tnefAttAttachment = 0x9005 // an attachment's MAPI properties
	tnefLevelAttach   = 0x02
	tnefAttrOverhead  = 1 + 4 + 4 + 2 // level, id, length, checksum

	mapiAttachLongFilename = 0x3707
	mapiAttachMimeTag      = 0x370e
)

// tnef lists the files inside a TNEF (winmail.dat) part as attachments of their own.
func (p *parser) tnef(id string, data []byte, tooBig bool) {
	if tooBig {
		p.run.problem("tnef-too-large", id, fmt.Sprintf("TNEF part larger than %d MiB; the files inside are not listed", maxTNEF>>20))
		return
	}
	files, err := tnefFiles(data)
	if err != nil {
		p.run.problem("tnef-undecodable", id, err.Error())
	}
	props := tnefAttachProps(data)
	m := p.run.msg
	for i, f := range files {
		if p.run.parts >= maxParts {
			p.run.problem("too-many-parts", id, fmt.Sprintf("more than %d MIME parts; the rest are not read", maxParts))
			break
		}
		p.run.parts++
		sum := sha256.Sum256(f.Data)
		a := Attachment{
			Part:        fmt.Sprintf("%s/tnef:%d", id, i+1),
			ContentType: "application/octet-stream",
			Size:        int64(len(f.Data)),
			SHA256:      hex.EncodeToString(sum[:]),
		}
		a.Filename, _ = decodeText(strings.TrimRight(f.Title, "\x00 "), windows1252)
		if i < len(props) {
			if props[i].name != "" {
				a.Filename = props[i].name
			}
			if t := strings.ToLower(props[i].mimeType); validMediaType(t) {
				a.ContentType = t
			}
		}
		m.Attachments = append(m.Attachments, a)
	}
}

// tnefFiles decodes data with github.com/teamwork/tnef. That package trusts its input (it panics
// on truncated attributes and can spin on a forged property count), so the attribute structure is
// checked first and only its well-formed prefix is handed over.
func tnefFiles(data []byte) (files []*tnef.Attachment, err error) {
	good, err := checkTNEF(data)
	if good == 0 {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			files, err = nil, errors.New("malformed TNEF data")
		}
	}()
	decoded, derr := tnef.Decode(data[:good])
	if derr != nil {
		return nil, fmt.Errorf("malformed TNEF data: %v", derr)
	}
	return decoded.Attachments, err
}

// checkTNEF returns the length of the well-formed prefix of data, and why the rest is not.
func checkTNEF(b []byte) (int, error) {
	if len(b) < 6 || binary.LittleEndian.Uint32(b) != tnefSignature {
		return 0, errors.New("not TNEF data: the signature is missing")
	}
	off, good := 6, 6
	inAttachment := false
	for off < len(b) {
		if len(b)-off < tnefAttrOverhead {
			return good, fmt.Errorf("TNEF data cut short at byte %d", off)
		}
		level := b[off]
		name := binary.LittleEndian.Uint16(b[off+1:])
		n := uint64(binary.LittleEndian.Uint32(b[off+5:]))
		if n > uint64(len(b)-off-tnefAttrOverhead) {
			return good, fmt.Errorf("TNEF attribute at byte %d runs past the end", off)
		}
		attr := b[off+9 : off+9+int(n)]
		switch {
		case name == tnefAttRendData:
			inAttachment = true
		case level == tnefLevelAttach && !inAttachment:
			return good, fmt.Errorf("TNEF attachment attribute at byte %d before any attachment", off)
		case name == tnefAttMsgProps && level != tnefLevelAttach:
			// Each property takes at least four bytes; a larger count is forged.
			if len(attr) < 4 || uint64(binary.LittleEndian.Uint32(attr)) > uint64(len(attr)/4) {
				return good, fmt.Errorf("TNEF property list at byte %d is malformed", off)
			}
		}
		off += tnefAttrOverhead + int(n)
		good = off
	}
	if good == 6 {
		return 0, errors.New("TNEF data holds no attributes")
	}
	return good, nil
}

// tnefProps are what Outlook keeps about an attached file beyond its title attribute, which is
// often the 8.3 short name.
type tnefProps struct {
	name, mimeType string
}

// tnefAttachProps reads PR_ATTACH_LONG_FILENAME and PR_ATTACH_MIME_TAG of each attachment, in the
// order teamwork/tnef lists the attachments.
func tnefAttachProps(b []byte) []tnefProps {
	good, _ := checkTNEF(b)
	var props []tnefProps
	for off := 6; off < good; {
		level, name := b[off], binary.LittleEndian.Uint16(b[off+1:])
		n := int(binary.LittleEndian.Uint32(b[off+5:]))
		attr := b[off+9 : off+9+n]
		off += tnefAttrOverhead + n
		switch {
		case name == tnefAttRendData:
			props = append(props, tnefProps{})
		case level == tnefLevelAttach && name == tnefAttAttachment && len(props) > 0:
			readMAPIProps(attr, &props[len(props)-1])
		}
	}
	return props
}

// readMAPIProps walks a MAPI property list (MS-OXTNEF 2.1.3.5) and keeps the two string properties
// it needs. It stops at the first property it cannot size.
func readMAPIProps(b []byte, into *tnefProps) {
	r := mapiReader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && r.ok(); i++ {
		tag := r.u32()
		typ, id := uint16(tag), uint16(tag>>16)
		if id >= 0x8000 { // a named property: GUID, kind, then an id or a name
			r.skip(16)
			if kind := r.u32(); kind == 0 {
				r.skip(4)
			} else {
				r.skip(pad4(int(r.u32())))
			}
		}
		multi := typ&0x1000 != 0
		typ &^= 0x1000
		size := mapiFixedSize(typ)
		if size == 0 {
			return
		}
		values := uint32(1)
		if multi || size < 0 {
			values = r.u32()
		}
		for v := uint32(0); v < values && r.ok(); v++ {
			if size > 0 {
				r.skip(pad4(size))
				continue
			}
			data := r.bytes(int(r.u32()))
			switch id {
			case mapiAttachLongFilename:
				into.name = mapiString(typ, data)
			case mapiAttachMimeTag:
				into.mimeType = mapiString(typ, data)
			}
		}
	}
}

// mapiFixedSize is the size of a fixed-size MAPI type, -1 for counted types, 0 for unknown ones.
func mapiFixedSize(typ uint16) int {
	switch typ {
	case 0x0002, 0x000b: // int16, boolean
		return 2
	case 0x0003, 0x0004, 0x000a: // int32, float, error code
		return 4
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // double, currency, app time, int64, time
		return 8
	case 0x0048: // GUID
		return 16
	case 0x000d, 0x001e, 0x001f, 0x0102: // object, string8, unicode string, binary
		return -1
	}
	return 0
}

func mapiString(typ uint16, data []byte) string {
	if typ == 0x001f { // UTF-16LE
		u := make([]uint16, len(data)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(data[2*i:])
		}
		return strings.TrimRight(string(utf16.Decode(u)), "\x00")
	}
	s, _ := decodeText(strings.TrimRight(string(data), "\x00"), windows1252)
	return s
}

func pad4(n int) int { return n + (-n & 3) }

// mapiReader reads little-endian values; past the end it reads zeros and ok turns false.
type mapiReader struct {
	b   []byte
	off int
	bad bool
}

func (r *mapiReader) ok() bool { return !r.bad }

func (r *mapiReader) skip(n int) {
	if n < 0 || n > len(r.b)-r.off {
		r.bad, r.off = true, len(r.b)
		return
	}
	r.off += n
}

func (r *mapiReader) u32() uint32 {
	if len(r.b)-r.off < 4 {
		r.bad, r.off = true, len(r.b)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// bytes returns the next n bytes and skips their padding.
func (r *mapiReader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.bad, r.off = true, len(r.b)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.skip(min(pad4(n), len(r.b)-r.off))
	return v
}
