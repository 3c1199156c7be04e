package devstacktest

import (
	"regexp"
	"strings"
	"testing"
)

func TestUniqueName(t *testing.T) {
	bucketName := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
	tests := []struct {
		logicalID, test string
		max             int
		prefix          string
	}{
		{"MailBucket", "TestArchive/big_message", 63, "mailbucket-testarchive-big-message-"},
		{"ArchiveTable", "TestX", 255, "archivetable-testx-"},
		{"MailBucket", strings.Repeat("TestVeryLongName", 10), 63, "mailbucket-testverylongname"},
	}
	for _, tt := range tests {
		got := uniqueName(tt.logicalID, tt.test, tt.max)
		if len(got) > tt.max || !strings.HasPrefix(got, tt.prefix) || !bucketName.MatchString(got) {
			t.Errorf("uniqueName(%q, %q, %d) = %q: want at most %d of [a-z0-9-] starting %q",
				tt.logicalID, tt.test, tt.max, got, tt.max, tt.prefix)
		}
		if again := uniqueName(tt.logicalID, tt.test, tt.max); again == got {
			t.Errorf("uniqueName gave %q twice", got)
		}
	}
}
