package replay_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// A paced pass waits for its pace before each read of the stream, never
// asking for more than a hundredth of a second's worth at once, and before
// each rollup; an unpaced one never waits. Both compact the same.
func TestCompactPaced(t *testing.T) {
	js := startJetStream(t)
	for _, rate := range []float64{0, 50000} {
		ns := namespace(t, js, "paced"+strconv.Itoa(int(rate)))
		publishKeys(t, js, ns, 10, 4, strconv.Itoa)
		var mu sync.Mutex
		var waits []int
		stats := compact(t, js, ns, replay.WithCompactRate(rate), replay.WithPaceHook(func(n int) {
			mu.Lock()
			waits = append(waits, n)
			mu.Unlock()
		}))
		if stats.RolledUp != 10 || streamInfo(t, js, ns).State.Msgs != 10 {
			t.Fatalf("rate %v: stats %+v, stream holds %d", rate, stats, streamInfo(t, js, ns).State.Msgs)
		}
		mu.Lock()
		if rate == 0 {
			if len(waits) != 0 {
				t.Errorf("unpaced pass waited %v", waits)
			}
			mu.Unlock()
			continue
		}
		var reads, records int
		for _, n := range waits {
			switch n {
			case 500: // a read asks for the burst, a hundredth of 50,000/s
				reads += n
			case 100: // a rollup's cost
				records++
			default:
				t.Errorf("a wait for %d messages; want 500 (a read) or 100 (a rollup)", n)
			}
		}
		mu.Unlock()
		if reads < 40 || records != 10 {
			t.Errorf("paced waits %v: %d messages read (want ≥ 40), %d record waits (want 10)", waits, reads, records)
		}
	}
	if _, err := replay.Compact(t.Context(), js, "paced0", replay.WithCompactRate(-1)); !errors.Is(err, replay.ErrInvalidCompactOption) {
		t.Errorf("rate -1: %v, want ErrInvalidCompactOption", err)
	}
}

// A Compactor paces its passes at DefaultCompactorRate unless told
// otherwise.
func TestCompactorPacedByDefault(t *testing.T) {
	js := startJetStream(t)
	for _, tt := range []struct {
		opts []replay.CompactOption
		want float64
	}{
		{nil, replay.DefaultCompactorRate},
		{[]replay.CompactOption{replay.WithCompactRate(0)}, 0},
		{[]replay.CompactOption{replay.WithCompactRate(500)}, 500},
	} {
		c, err := replay.NewCompactor(js, "orders", tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := replay.CompactorRate(c); got != tt.want {
			t.Errorf("rate %v, want %v", got, tt.want)
		}
	}
}

// A pass that left its records alone for being recent is not repeated on
// the ratio until the duplicate window has passed since it; then the
// next pass rolls them up.
func TestCompactorWaitsOutTheDuplicateWindow(t *testing.T) {
	js := startJetStream(t)
	ns := namespace(t, js, "recent")
	for i := range 3 { // 3 messages per subject, each with a token
		for k := range 5 {
			token := "t" + strconv.Itoa(i*5+k)
			msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: ns, IdempotencyToken: token}, put("key"+strconv.Itoa(k), "v", strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			msg.Header.Set(subjects.HeaderMsgID, token)
			publishMsg(t, js, msg)
		}
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	reg := prometheus.NewRegistry()
	c, err := replay.NewCompactor(js, ns, replay.WithCompactLogger(discard), replay.WithCompactRegisterer(reg), replay.WithCompactClock(now),
		replay.WithCompactCheckInterval(5*time.Millisecond), replay.WithCompactMaxInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runCompactor(t, c)
	passes := func() float64 { return counter(t, reg, "prism_compactor_passes_total") }
	deadline := time.Now().Add(catchUpTimeout)
	for passes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no pass above the ratio")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, stats := c.LastPass(); stats.SkippedRecent != 5 || stats.RolledUp != 0 {
		t.Fatalf("first pass %+v, want all 5 records skipped as recent", stats)
	}
	time.Sleep(200 * time.Millisecond) // some 40 checks within the window
	if n := passes(); n != 1 {
		t.Fatalf("%v passes within the duplicate window, want 1", n)
	}
	clock.Add(int64(streamInfo(t, js, ns).Config.Duplicates + time.Second))
	for streamInfo(t, js, ns).State.Msgs != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("after the window: %v passes, stream holds %d", passes(), streamInfo(t, js, ns).State.Msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
