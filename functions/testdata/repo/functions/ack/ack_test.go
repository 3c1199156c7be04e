package ack

import (
	"os"
	"testing"
)

func TestOnlyReadsInTests(t *testing.T) { _ = os.Getenv("ACK_TEST_ONLY") }
