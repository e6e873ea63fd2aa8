package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// invalidArgument is how the gateway recognizes an error that blames the
// request (INVALID_ARGUMENT rather than UNAVAILABLE).
type invalidArgument interface{ InvalidArgument() bool }

func isInvalidArgument(err error) bool {
	var ia invalidArgument
	return errors.As(err, &ia) && ia.InvalidArgument()
}

func TestInvalidArgumentErrors(t *testing.T) {
	s := openStore(t, newNamespace(t))
	ctx := context.Background()
	call := func(err error) func() error { return func() error { return err } }
	_, badToken := s.ReadRange(ctx, &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: "!!"})
	_, badKVToken := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("a"), PageToken: "!!"})
	_, nilSearch := s.Search(ctx, nil)
	_, emptySeries := s.ReadRange(ctx, &prismv1.ReadRangeRequest{})
	_, keysAndRange := s.GetItems(ctx, &prismv1.GetRequest{Keys: [][]byte{[]byte("k")}, Range: &prismv1.KeyRange{}})
	badBatch := s.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{tsAppend(0, "s")}, 1)
	badChange := s.ApplyTimeSeries(ctx, []*prismv1.TimeSeriesChange{nil}, 1)

	tests := []struct {
		name        string
		err         func() error
		wantErr     error
		wantInvalid bool
	}{
		{"sentinel page token", call(postgres.ErrInvalidPageToken), postgres.ErrInvalidPageToken, true},
		{"sentinel request", call(postgres.ErrInvalidRequest), postgres.ErrInvalidRequest, true},
		{"ReadRange bad token", call(badToken), postgres.ErrInvalidPageToken, true},
		{"GetItems bad token", call(badKVToken), postgres.ErrInvalidPageToken, true},
		{"Search nil request", call(nilSearch), postgres.ErrInvalidRequest, true},
		{"ReadRange empty series", call(emptySeries), postgres.ErrInvalidRequest, true},
		{"GetItems keys and range", call(keysAndRange), postgres.ErrInvalidRequest, true},
		// Write errors are the projector's business, not a client's.
		{"invalid batch", call(badBatch), postgres.ErrInvalidBatch, false},
		{"invalid change", call(badChange), postgres.ErrInvalidChange, false},
		{"closed", call(postgres.ErrClosed), postgres.ErrClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := isInvalidArgument(err); got != tt.wantInvalid {
				t.Errorf("InvalidArgument() = %v for %v, want %v", got, err, tt.wantInvalid)
			}
		})
	}
	// The two sentinels stay distinct.
	if errors.Is(postgres.ErrInvalidPageToken, postgres.ErrInvalidRequest) || errors.Is(emptySeries, postgres.ErrInvalidPageToken) {
		t.Error("ErrInvalidPageToken and ErrInvalidRequest match each other")
	}
}
