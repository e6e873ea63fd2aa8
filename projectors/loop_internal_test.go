package projectors

import "testing"

// A batch takes up to batchSize changes, or up to catchUpFactor batches
// (capped by maxCatchUpBatch, never below one batch) once a whole batch is
// waiting.
func TestBatchLimit(t *testing.T) {
	tests := []struct {
		name               string
		batchSize, waiting int
		want               int
	}{
		{"live", 100, 0, 100},
		{"less than a batch waiting", 100, 99, 100},
		{"a batch waiting", 100, 100, 400},
		{"far behind", 100, 10_000, 400},
		{"capped", 2000, 2000, maxCatchUpBatch},
		{"cap below one batch", 5000, 5000, 5000},
		{"batch of one", 1, 1, catchUpFactor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := batchLimit(tt.batchSize, tt.waiting); got != tt.want {
				t.Errorf("batchLimit(%d, %d) = %d, want %d", tt.batchSize, tt.waiting, got, tt.want)
			}
		})
	}
}
