package mailtest

import (
	"bytes"
	"testing"
)

func TestGenerate(t *testing.T) {
	for _, kind := range Kinds {
		for _, size := range []int{1 << 10, 100 << 10, 5 << 20} {
			got := Generate(kind, size)
			if len(got) < size*9/10 || len(got) > size*11/10+4096 {
				t.Errorf("Generate(%q, %d) is %d bytes", kind, size, len(got))
			}
			if !bytes.Equal(got, Generate(kind, size)) {
				t.Errorf("Generate(%q, %d) is not deterministic", kind, size)
			}
			if bytes.Contains(bytes.ReplaceAll(got, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("Generate(%q, %d) has a bare LF", kind, size)
			}
		}
	}
}
