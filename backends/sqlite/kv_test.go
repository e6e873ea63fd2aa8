package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// The semantics of ApplyKeyValue (checkpoints, redelivery, revisions,
// deletes, invalid changes and batches) are checked by the conformance
// suite (conformance_test.go); these tests cover what is SQLite's own.

// An *InvalidChangeError says which change of the batch is at fault, for the
// dead-letter record.
func TestInvalidChangeErrorNamesTheChange(t *testing.T) {
	good := put(11, "good", item("a", "1"))
	tests := []struct {
		name    string
		bad     *prismv1.KeyValueChange
		wantIx  int
		wantSeq uint64
	}{
		{"nil change", nil, 1, 0},
		{"nil event", &prismv1.KeyValueChange{Seq: 12}, 1, 12},
		{"neither put nor delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x")}}, 1, 12},
		{"nil put", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Put{}}}, 1, 12},
		{"nil delete", &prismv1.KeyValueChange{Seq: 12, Event: &prismv1.KeyValueEvent{Id: []byte("x"), Change: &prismv1.KeyValueEvent_Delete{}}}, 1, 12},
		{"nil item", put(12, "x", item("a", "1"), nil), 1, 12},
		{"invalid expire_time", put(12, "x", &prismv1.Item{Key: []byte("a"), ExpireTime: &timestamppb.Timestamp{Nanos: 2e9}}), 1, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			err := s.ApplyKeyValue(context.Background(), []*prismv1.KeyValueChange{good, tt.bad, put(13, "after", item("k", "v"))}, 13)
			var ice *sqlite.InvalidChangeError
			if !errors.As(err, &ice) || ice.Index != tt.wantIx || ice.Seq != tt.wantSeq || ice.Reason == "" {
				t.Fatalf("err = %#v, want *InvalidChangeError at index %d seq %d with a reason", err, tt.wantIx, tt.wantSeq)
			}
			if !ice.Permanent() {
				t.Error("InvalidChangeError is not permanent")
			}
		})
	}
}

// SQLite stores sequences as int64: a through beyond it is the caller's bug.
func TestApplyKeyValueThroughBeyondInt64(t *testing.T) {
	s, _ := openStore(t)
	err := s.ApplyKeyValue(context.Background(), nil, 1<<63)
	if !errors.Is(err, sqlite.ErrInvalidBatch) {
		t.Fatalf("err = %v, want ErrInvalidBatch", err)
	}
	if errors.Is(err, sqlite.ErrInvalidChange) {
		t.Fatalf("err = %v also matches ErrInvalidChange: the caller would dead-letter good events", err)
	}
	if cp := checkpoint(t, s); cp != 0 {
		t.Errorf("checkpoint = %d, want 0", cp)
	}
}
