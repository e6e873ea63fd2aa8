package natskv_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/backendtest"
	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/itest/natstest"
)

// TestConformance runs the KeyValue suite on one in-process server, each
// test on a bucket of its own, reopened from the same bucket. TimeSeries is
// not declared, and the suite checks that it is not implemented either.
func TestConformance(t *testing.T) {
	_, js := natstest.Start(t)
	backendtest.Run(t, backendtest.Config{
		Features: []backendtest.Feature{backendtest.FeatureKeyValue, backendtest.FeatureKeyValueExport},
		Errors: backendtest.Errors{
			InvalidChange:    natskv.ErrInvalidChange,
			InvalidPageToken: natskv.ErrInvalidPageToken,
			Closed:           natskv.ErrClosed,
			InvalidBatch:     natskv.ErrInvalidBatch,
			InvalidRequest:   natskv.ErrInvalidRequest,
		},
		New: func(t testing.TB, now func() time.Time) (any, func() any) {
			ns := newNamespace()
			open := func() any {
				t.Helper()
				s, err := natskv.Open(context.Background(), js, ns, natskv.WithClock(now))
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}
			return open(), open
		},
		FailCheckpointWrites: func(t testing.TB, b any) func() {
			s := b.(*natskv.Store)
			s.SetBeforeCommit(func() { rewriteCheckpoint(t, js, s) })
			return func() { s.SetBeforeCommit(nil) }
		},
	})
}

// rewriteCheckpoint publishes s's checkpoint again, unchanged, as another
// writer would: the commit that follows expects the message it read and is
// refused, so its checkpoint write fails.
func rewriteCheckpoint(t testing.TB, js jetstream.JetStream, s *natskv.Store) {
	ctx := context.Background()
	subject := "$KV." + s.Bucket() + ".m.checkpoint"
	st, err := js.Stream(ctx, "KV_"+s.Bucket())
	if err != nil {
		t.Errorf("rewrite checkpoint: %v", err)
		return
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Errorf("rewrite checkpoint: %v", err)
		return
	}
	if _, err := js.Publish(ctx, subject, m.Data); err != nil {
		t.Errorf("rewrite checkpoint: %v", err)
	}
}
