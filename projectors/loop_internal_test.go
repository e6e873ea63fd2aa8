package projectors

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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

// A throttled projector's pulls shrink while paying for them waits and
// grow while it does not, within [minPull, the catch-up batch].
func TestNextPull(t *testing.T) {
	tests := []struct {
		name    string
		n, most int
		waited  time.Duration
		want    int
	}{
		{"long wait halves", 1024, 4096, time.Second, 512},
		{"floor", 20, 4096, time.Second, minPull},
		{"floor above the batch", 8, 8, time.Second, 8},
		{"no wait doubles", 512, 4096, 0, 1024},
		{"cap", 4096, 4096, 0, 4096},
		{"about right stays", 300, 4096, pullWaitTarget / 2, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextPull(tt.n, tt.most, tt.waited); got != tt.want {
				t.Errorf("nextPull(%d, %d, %v) = %d, want %d", tt.n, tt.most, tt.waited, got, tt.want)
			}
		})
	}
}

// lingerFill takes what arrives within its wait, up to the limit, and
// returns the batch as it was when nothing arrives.
func TestLingerFill(t *testing.T) {
	var timer *time.Timer
	msgs := make(chan jetstream.Msg)
	go func() {
		for range 4 {
			msgs <- nil
			time.Sleep(time.Millisecond)
		}
	}()
	// An hour's wait: it can only return by reaching the limit.
	batch := lingerFill(make([]jetstream.Msg, 1), msgs, 4, time.Hour, &timer)
	if len(batch) != 4 {
		t.Fatalf("filled %d messages, want the limit of 4", len(batch))
	}
	<-msgs // the fourth, the last
	batch = lingerFill(batch[:2], msgs, 4, 5*time.Millisecond, &timer)
	if len(batch) != 2 {
		t.Fatalf("nothing arrived, yet the batch has %d messages, want 2", len(batch))
	}
	for _, d := range []time.Duration{-time.Millisecond, time.Second} {
		if err := WithLinger(d)(&options{}); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WithLinger(%v) = %v, want ErrInvalidOption", d, err)
		}
	}
}
