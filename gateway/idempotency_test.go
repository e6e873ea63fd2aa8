package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// shortenDuplicateWindow sets the namespace stream's duplicate window to
// d, standing in for the 2 minutes passing.
func shortenDuplicateWindow(t *testing.T, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = d
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestRetryAfterDuplicateWindow: a retry with the same token after
// JetStream's duplicate window has passed is still answered with the
// first write's seq and stored once, for the retry horizon; a reused token
// with another body is still IDEMPOTENCY_MISMATCH. With a horizon of just
// the duplicate window, the same retry is stored twice: what the token
// bucket prevents.
func TestRetryAfterDuplicateWindow(t *testing.T) {
	const window = 500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		horizon   time.Duration
		wantTwice bool
	}{
		{name: "declared horizon", horizon: 24 * time.Hour},
		{name: "default: the duplicate window only", horizon: 0, wantTwice: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{namespace: func(n *namespaces.Namespace) { n.Needs.RetryHorizon = namespaces.Duration(tc.horizon) }})
			shortenDuplicateWindow(t, e.js, window)
			subj := subjects.Write(testNS, "put")
			req := putReq("r1", "k", "v")
			req.IdempotencyToken = "late-retry"
			var first prismv1.WriteResponse
			mustCall(t, e.nc, subj, req, &first)
			// JetStream forgets the id once the window has passed.
			time.Sleep(3 * window)

			var again prismv1.WriteResponse
			mustCall(t, e.nc, subj, req, &again)
			n := streamMsgs(t, e.js)
			if tc.wantTwice {
				if n != 2 || again.GetDuplicate() {
					t.Fatalf("without a horizon: retry %v, %d messages; want it stored again (2): the test would not see a lost horizon", &again, n)
				}
				return
			}
			if !again.GetDuplicate() || again.GetSeq() != first.GetSeq() || n != 1 {
				t.Fatalf("retry after the window = %v with %d messages; want a duplicate of seq %d, 1 message", &again, n, first.GetSeq())
			}
			other := putReq("r1", "k", "another value")
			other.IdempotencyToken = "late-retry"
			var resp prismv1.WriteResponse
			if er := call(t, e.nc, subj, other, &resp, encProto); !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) {
				t.Fatalf("same token, other body, after the window: %v; want IDEMPOTENCY_MISMATCH", er)
			}
			if n := streamMsgs(t, e.js); n != 1 {
				t.Fatalf("stream has %d messages after the mismatch, want 1", n)
			}
		})
	}
}
