package audit_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func TestEnsureStream(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		cfg        audit.StreamConfig
		wantMaxAge time.Duration
		wantErr    error
	}{
		{name: "default retention", cfg: audit.StreamConfig{}, wantMaxAge: 90 * 24 * time.Hour},
		{name: "configured retention", cfg: audit.StreamConfig{Retention: 7 * 24 * time.Hour, Replicas: 1}, wantMaxAge: 7 * 24 * time.Hour},
		{name: "updated retention", cfg: audit.StreamConfig{Retention: 30 * 24 * time.Hour}, wantMaxAge: 30 * 24 * time.Hour},
		{name: "negative retention", cfg: audit.StreamConfig{Retention: -time.Hour}, wantErr: status.ErrInvalidArgument},
		{name: "retention shorter than the duplicate window", cfg: audit.StreamConfig{Retention: time.Minute}, wantErr: status.ErrInvalidArgument},
		{name: "too many replicas", cfg: audit.StreamConfig{Replicas: 6}, wantErr: status.ErrInvalidArgument},
		{name: "negative replicas", cfg: audit.StreamConfig{Replicas: -1}, wantErr: status.ErrInvalidArgument},
		{name: "replicas a single server cannot have", cfg: audit.StreamConfig{Replicas: 3}, wantErr: status.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := audit.EnsureStream(ctx, js, tt.cfg)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("EnsureStream(%+v) = %v, want %v", tt.cfg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c := info.Config
			if c.Name != subjects.AuditStream || !slices.Equal(c.Subjects, []string{"prism.$audit.>"}) {
				t.Fatalf("stream %s on %v", c.Name, c.Subjects)
			}
			if c.MaxAge != tt.wantMaxAge {
				t.Fatalf("MaxAge %v, want %v", c.MaxAge, tt.wantMaxAge)
			}
			if c.Storage != jetstream.FileStorage || c.Discard != jetstream.DiscardOld || c.Retention != jetstream.LimitsPolicy || c.Replicas != 1 {
				t.Fatalf("storage %v, discard %v, retention %v, replicas %d; want file, old, limits, 1", c.Storage, c.Discard, c.Retention, c.Replicas)
			}
			if !c.DenyDelete || !c.DenyPurge {
				t.Fatalf("deny delete %v, deny purge %v: records could be removed", c.DenyDelete, c.DenyPurge)
			}
		})
	}
}

func TestAuditRecordsCannotBeDeleted(t *testing.T) {
	js := startStream(t)
	w, _ := newWriter(t, js)
	ctx := context.Background()
	if err := w.Record(ctx, sample("orders", "write.put", "alice", "r1", "a"), true); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, subjects.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("deleted an audit record")
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("purged the audit stream")
	}
	if got := list(t, js, audit.Filter{}); len(got) != 1 {
		t.Fatalf("%d records after the refused delete and purge, want 1", len(got))
	}
}
