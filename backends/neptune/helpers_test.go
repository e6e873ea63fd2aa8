package neptune_test

import (
	"context"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
)

// fastRetry keeps the tests' backoff short; the attempts are the default.
var fastRetry = neptune.WithRetry(6, time.Millisecond, 5*time.Millisecond)

// openStore returns a store of namespace ns on srv, closed at the end of
// the test.
func openStore(t testing.TB, srv *neptunetest.Server, ns string, opts ...neptune.Option) *neptune.Store {
	t.Helper()
	opts = append([]neptune.Option{
		neptune.WithHTTPClient(srv.HTTPClient()),
		neptune.WithCredentials(srv.CredentialsProvider(), srv.Region),
		fastRetry,
	}, opts...)
	s, err := neptune.New(context.Background(), srv.URL, ns, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
