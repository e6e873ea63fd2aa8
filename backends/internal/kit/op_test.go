package kit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	errClosed  = errors.New("closed")
	errInvalid = errors.New("invalid")
	errFailed  = errors.New("failed")
)

func TestDo(t *testing.T) {
	tests := []struct {
		name     string
		invalid  error
		closed   bool
		f        func() (int, error)
		want     int
		wantErr  error
		wantText string
		wantRun  bool
	}{
		{"ok", nil, false, func() (int, error) { return 7, nil }, 7, nil, "", true},
		{"invalid first, even when closed", errInvalid, true, nil, 0, errInvalid, "op: invalid", false},
		{"closed", nil, true, nil, 0, errClosed, "op: closed", false},
		{"f fails", nil, false, func() (int, error) { return 3, errFailed }, 0, errFailed, "op: failed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gate
			if tt.closed {
				if err := g.Close(nil); err != nil {
					t.Fatal(err)
				}
			}
			ran := false
			got, err := Do(&g, errClosed, "op", tt.invalid, func() (int, error) {
				ran = true
				return tt.f()
			})
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err != nil && err.Error() != tt.wantText) || ran != tt.wantRun {
				t.Errorf("Do = %d, %v (ran %v), want %d, %q (ran %v)", got, err, ran, tt.want, tt.wantText, tt.wantRun)
			}
		})
	}
}

func TestApplyNamesTheBatch(t *testing.T) {
	var g Gate
	err := Apply(&g, errClosed, "key-value", 9, nil, func() error { return errFailed })
	if !errors.Is(err, errFailed) || err.Error() != "apply key-value batch through seq 9: failed" {
		t.Errorf("Apply = %v", err)
	}
	err = Apply(&g, errClosed, "key-value", 9, errInvalid, func() error { t.Fatal("apply ran for an invalid batch"); return nil })
	if !errors.Is(err, errInvalid) || err.Error() != "apply key-value batch: invalid" {
		t.Errorf("Apply of an invalid batch = %v", err)
	}
	if err := Apply(&g, errClosed, "time-series", 9, nil, func() error { return nil }); err != nil {
		t.Errorf("Apply = %v", err)
	}
}

// Close waits for the operation in flight, runs release once, and no
// operation enters afterwards.
func TestGateCloseWaitsAndIsFinal(t *testing.T) {
	var g Gate
	if err := g.Enter(errClosed); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Close(func() error { close(released); return errFailed }); !errors.Is(err, errFailed) {
			t.Errorf("first Close = %v, want release's error", err)
		}
	})
	select {
	case <-released:
		t.Fatal("Close released with an operation in flight")
	default:
	}
	g.Leave()
	wg.Wait()
	if err := g.Close(func() error { t.Error("release ran twice"); return nil }); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := g.Enter(errClosed); !errors.Is(err, errClosed) {
		t.Errorf("Enter after Close = %v", err)
	}
}

func TestSweepChunks(t *testing.T) {
	tests := []struct {
		name    string
		chunks  []int64 // what each call deletes; past the end: errFailed
		cancel  int     // cancel ctx after this many calls (0: never)
		want    int64
		calls   int
		wantErr error
	}{
		{"one short chunk", []int64{3}, 0, 3, 1, nil},
		{"full chunks then a short one", []int64{5, 5, 0}, 0, 10, 3, nil},
		{"a failing chunk keeps what came before", []int64{5, 5}, 0, 10, 3, errFailed},
		{"cancelled between chunks", []int64{5, 5, 5}, 1, 5, 1, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			got, err := SweepChunks(ctx, 5, func() (int64, error) {
				calls++
				if calls == tt.cancel {
					cancel()
				}
				if calls > len(tt.chunks) {
					return 4, errFailed
				}
				return tt.chunks[calls-1], nil
			})
			if got != tt.want || calls != tt.calls || !errors.Is(err, tt.wantErr) {
				t.Errorf("SweepChunks = %d, %v after %d calls; want %d, %v after %d", got, err, calls, tt.want, tt.wantErr, tt.calls)
			}
		})
	}
}

func TestKeyPage(t *testing.T) {
	id := func(b []byte) []byte { return b }
	ids := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	if page, next := KeyPage(ids, 3, id); len(page) != 3 || next != "" {
		t.Errorf("KeyPage of a full last page = %q, %q", page, next)
	}
	page, next := KeyPage(ids, 2, id)
	if !slices.EqualFunc(page, ids[:2], slices.Equal) || next != EncodeKeyToken([]byte("b")) {
		t.Errorf("KeyPage one past the page = %q, %q; want [a b], token of b", page, next)
	}
}

func TestAfter(t *testing.T) {
	tests := []struct {
		name         string
		start, after []byte
		hasAfter     bool
		wantLo       int
		wantLower    string
	}{
		{"first page from the start", nil, nil, false, 0, ""},
		{"first page from start", []byte("m"), nil, false, 0, "m"},
		{"token past start", []byte("m"), []byte("n"), true, 1, "n"},
		{"token at start", []byte("m"), []byte("m"), true, 1, "m"},
		{"token before start", []byte("m"), []byte("a"), true, 0, "m"},
		{"empty token key", nil, []byte{}, true, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, lower := After(tt.start, tt.after, tt.hasAfter)
			if lo != tt.wantLo || string(lower) != tt.wantLower || lower == nil {
				t.Errorf("After = %d, %q, want %d, %q (non-nil)", lo, lower, tt.wantLo, tt.wantLower)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	type opts struct{ n int }
	set := func(n int) func(*opts) error {
		return func(o *opts) error { o.n = n; return CheckRange("WithN", n, 1, 5, "things") }
	}
	var o opts
	if err := ApplyOptions(&o, []func(*opts) error{set(2), set(4)}); err != nil || o.n != 4 {
		t.Errorf("ApplyOptions = %v, n %d; want nil, 4", err, o.n)
	}
	if err := ApplyOptions(&o, []func(*opts) error{set(6), set(2)}); err == nil || err.Error() != "WithN: 6 things, need 1 to 5" || o.n != 6 {
		t.Errorf("ApplyOptions with a bad option = %v (n %d): must stop at it", err, o.n)
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{CheckRange("WithN", 0, 1, 5, ""), "WithN: 0, need 1 to 5"},
		{CheckRange("WithN", 1, 1, 5, ""), ""},
		{CheckRange("WithN", 5, 1, 5, ""), ""},
		{CheckAtLeast("WithConns", int32(0), 1, "connections"), "WithConns: 0 connections, need at least 1"},
		{CheckAtLeast("WithConns", int32(1), 1, "connections"), ""},
		{CheckClock(nil), "WithClock: nil clock"},
		{CheckClock(time.Now), ""},
	} {
		if got := errText(tt.err); got != tt.want {
			t.Errorf("error %q, want %q", got, tt.want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestKeysAfter(t *testing.T) {
	keys := [][]byte{[]byte("c"), []byte("a"), nil, []byte("b"), []byte("c")}
	if got := KeysAfter(keys, nil, false); !slices.EqualFunc(got, [][]byte{{}, []byte("a"), []byte("b"), []byte("c")}, slices.Equal) || got[0] == nil {
		t.Errorf("KeysAfter without a token = %q", got)
	}
	if got := KeysAfter(keys, []byte("a"), true); !slices.EqualFunc(got, [][]byte{[]byte("b"), []byte("c")}, slices.Equal) {
		t.Errorf("KeysAfter a = %q, want [b c]", got)
	}
	if got := KeysAfter(keys, []byte("c"), true); got == nil || len(got) != 0 {
		t.Errorf("KeysAfter c = %#v, want empty, not nil", got)
	}
}
