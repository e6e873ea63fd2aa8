package namespaces_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// TestStreamsOfLargeValuesAndTokens: a keyvalue namespace gets a blob
// stream, and every namespace with a retry horizon above the duplicate
// window a token bucket with the horizon as TTL (ADR 025); DeleteStreams
// removes both.
func TestStreamsOfLargeValuesAndTokens(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	for _, tc := range []struct {
		ns       namespaces.Namespace
		blobs    bool
		tokenTTL time.Duration // 0: no bucket
	}{
		{namespaces.Namespace{Name: "docs", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{RetryHorizon: namespaces.Duration(24 * time.Hour)}}, true, 24 * time.Hour},
		{namespaces.Namespace{Name: "plain", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, true, 0},
		{namespaces.Namespace{Name: "ticks", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite", Needs: namespaces.Needs{RetryHorizon: namespaces.Duration(time.Hour)}}, false, time.Hour},
		{namespaces.Namespace{Name: "quick", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Needs: namespaces.Needs{RetryHorizon: namespaces.Duration(namespaces.DuplicateWindow)}}, true, 0},
	} {
		if err := namespaces.EnsureStreams(ctx, js, tc.ns); err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, subjects.BlobStream(tc.ns.Name))
		if tc.blobs != (err == nil) {
			t.Fatalf("%s: blob stream: %v, want it: %v", tc.ns.Name, err, tc.blobs)
		}
		if tc.blobs && s.CachedInfo().Config.Subjects[0] != subjects.BlobStreamSubjects(tc.ns.Name)[0] {
			t.Fatalf("%s: blob stream subjects %v", tc.ns.Name, s.CachedInfo().Config.Subjects)
		}
		kv, err := js.KeyValue(ctx, subjects.TokenBucket(tc.ns.Name))
		switch {
		case tc.tokenTTL == 0 && !errors.Is(err, jetstream.ErrBucketNotFound):
			t.Fatalf("%s: token bucket: %v; want none", tc.ns.Name, err)
		case tc.tokenTTL != 0 && err != nil:
			t.Fatalf("%s: token bucket: %v", tc.ns.Name, err)
		case tc.tokenTTL != 0:
			st, err := kv.Status(ctx)
			if err != nil || st.TTL() != tc.tokenTTL {
				t.Fatalf("%s: token bucket TTL %v, %v; want %v", tc.ns.Name, st.TTL(), err, tc.tokenTTL)
			}
		}
		if err := namespaces.DeleteStreams(ctx, js, tc.ns.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Stream(ctx, subjects.BlobStream(tc.ns.Name)); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("%s: blob stream after delete: %v", tc.ns.Name, err)
		}
		if _, err := js.KeyValue(ctx, subjects.TokenBucket(tc.ns.Name)); !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Fatalf("%s: token bucket after delete: %v", tc.ns.Name, err)
		}
	}
}
