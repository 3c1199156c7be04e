package main

import (
	"io"
	"strings"
	"testing"
)

func TestWithoutMboxSeparator(t *testing.T) {
	tests := []struct{ in, want string }{
		{"From MAILER-DAEMON Fri Feb 13 02:45:46 2015\nReturn-Path: <>\n", "Return-Path: <>\n"},
		{"From a@b Mon Jan 1 00:00:00 2015\r\nSubject: x\r\n", "Subject: x\r\n"},
		{"From a@b Mon Jan 1 00:00:00 2015\rSubject: x\r", "Subject: x\r"},
		{"From: Ann <ann@example.org>\r\n", "From: Ann <ann@example.org>\r\n"},
		{"Subject: no separator\n", "Subject: no separator\n"},
		{"From ", ""},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(withoutMboxSeparator(strings.NewReader(tt.in)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("withoutMboxSeparator(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
