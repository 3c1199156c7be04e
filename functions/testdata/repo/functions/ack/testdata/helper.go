package testdata

import "os"

var _ = os.Getenv("ACK_TESTDATA_ONLY")
