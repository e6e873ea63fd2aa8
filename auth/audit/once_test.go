package audit_test

import (
	"context"
	"testing"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
)

func TestRecordOnce(t *testing.T) {
	js := startStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an interrupted command still records what it did
	rec := sample("orders", "replay.run", "prism/ops", "")
	if err := audit.RecordOnce(ctx, js, rec); err != nil {
		t.Fatalf("RecordOnce: %v", err)
	}
	got := list(t, js, audit.Filter{Namespace: "orders"})
	if len(got) != 1 || got[0].Op != "replay.run" || got[0].Principal.Name != "prism/ops" {
		t.Fatalf("listed %+v, want the one replay.run record", got)
	}

	_, bare := natstest.Start(t) // no audit stream
	if err := audit.RecordOnce(context.Background(), bare, rec); err == nil {
		t.Fatal("RecordOnce stored a record without an audit stream")
	}
}
