package kit

import (
	"testing"
	"time"
)

func TestNonNil(t *testing.T) {
	if b := NonNil(nil); b == nil || len(b) != 0 {
		t.Errorf("NonNil(nil) = %#v, want an empty, non-nil slice", b)
	}
	in := []byte("x")
	if b := NonNil(in); &b[0] != &in[0] {
		t.Errorf("NonNil(%q) did not return its argument", in)
	}
}

func TestSplitTime(t *testing.T) {
	tests := []struct {
		name  string
		t     time.Time
		sec   int64
		nanos int32
	}{
		{"epoch", time.Unix(0, 0), 0, 0},
		{"nanoseconds", time.Unix(1, 999_999_999), 1, 999_999_999},
		{"before the epoch", time.Unix(0, -1), -1, 999_999_999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if sec, nanos := SplitTime(tt.t); sec != tt.sec || nanos != tt.nanos {
				t.Errorf("SplitTime = %d, %d; want %d, %d", sec, nanos, tt.sec, tt.nanos)
			}
		})
	}
}
