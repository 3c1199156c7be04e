package dynamo

import "testing"

// SetSearchBounds lowers what one page of an archive search may read, for the test's duration.
func SetSearchBounds(t testing.TB, requests, examined int) {
	r, e := searchMaxRequests, searchMaxExamined
	searchMaxRequests, searchMaxExamined = requests, examined
	t.Cleanup(func() { searchMaxRequests, searchMaxExamined = r, e })
}
