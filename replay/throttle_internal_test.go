package replay

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeProbes are probes whose readings the test sets between steps.
type fakeProbes struct {
	lag     uint64
	latency time.Duration
	err     error
}

// newTestThrottle returns a Throttle whose controller the test drives with
// step, at a clock it advances by a second per step.
func newTestThrottle(t *testing.T, p *fakeProbes, opts ...ThrottleOption) (*Throttle, func()) {
	t.Helper()
	o := defaultThrottleOptions()
	o.controller = false
	opts = append(opts,
		WithLagProbe(func(context.Context) (uint64, error) { return p.lag, p.err }, 5000),
		WithLatencyProbe(func(context.Context) (time.Duration, error) { return p.latency, nil }, 250*time.Millisecond))
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	th, err := newThrottle(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { th.Close() })
	now := th.lastStep
	return th, func() {
		now = now.Add(time.Second)
		th.step(context.Background(), now)
	}
}

func TestThrottleHalvesUnderLagAndRecovers(t *testing.T) {
	p := &fakeProbes{}
	th, step := newTestThrottle(t, p, WithMaxRate(1000))
	step()
	if st := th.State(); st.Rate != 1000 || st.Throttled {
		t.Fatalf("healthy: %+v, want rate 1000 unthrottled", st)
	}

	p.lag = 12000
	for _, want := range []float64{500, 250, 125, 100, 100} { // floor DefaultMinRate
		step()
		st := th.State()
		if st.Rate != want || !st.Throttled || st.Reason != "primary lag 12000 > 5000" || st.Lag != 12000 {
			t.Fatalf("lagging: %+v, want rate %v throttled by primary lag 12000 > 5000", st, want)
		}
	}

	p.lag = 10
	for _, want := range []float64{200, 300, 400, 500, 600, 700, 800, 900} { // + cap/10 a step
		step()
		st := th.State()
		if st.Rate != want || !st.Throttled || st.Reason != "recovering after primary lag 12000 > 5000" {
			t.Fatalf("recovering: %+v, want rate %v", st, want)
		}
	}
	step()
	if st := th.State(); st.Rate != 1000 || st.Throttled || st.Reason != "" {
		t.Fatalf("recovered: %+v, want rate 1000 unthrottled without reason", st)
	}
}

func TestThrottleLatencyAndProbeErrorsCut(t *testing.T) {
	p := &fakeProbes{latency: 400 * time.Millisecond}
	th, step := newTestThrottle(t, p, WithMaxRate(1000))
	step()
	if st := th.State(); st.Rate != 500 || st.Reason != "apply latency 400ms > 250ms" || st.Latency != 400*time.Millisecond {
		t.Fatalf("slow target: %+v", st)
	}
	p.latency, p.err = 0, errors.New("consumer info: timeout")
	step()
	if st := th.State(); st.Rate != 250 || st.Reason != "lag probe: consumer info: timeout" {
		t.Fatalf("failing probe: %+v", st)
	}
}

// Under any sequence of probe readings the rate stays between the floor
// and the cap.
func TestThrottleNeverExceedsMaxRate(t *testing.T) {
	p := &fakeProbes{}
	th, step := newTestThrottle(t, p, WithMaxRate(3000), WithMinRate(50))
	r := rand.New(rand.NewPCG(7, 8))
	seen := map[bool]int{}
	for i := range 2000 {
		p.lag = 0
		if r.IntN(3) == 0 {
			p.lag = 6000
		}
		step()
		st := th.State()
		if st.Rate > 3000 || st.Rate < 50 {
			t.Fatalf("step %d: rate %v outside [50, 3000]", i, st.Rate)
		}
		if th.lim.Limit() > 3000 {
			t.Fatalf("step %d: limiter at %v > 3000", i, th.lim.Limit())
		}
		seen[st.Throttled]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("throttled %d and free %d steps: the sequence did not exercise both", seen[true], seen[false])
	}
}

// Without a cap the first cut starts from the rate the backfill ran at,
// and the recovery lifts the limit again.
func TestThrottleWithoutCapCutsFromTheObservedRate(t *testing.T) {
	p := &fakeProbes{}
	th, step := newTestThrottle(t, p)
	if err := th.Wait(context.Background(), 8000); err != nil { // unlimited: at once
		t.Fatal(err)
	}
	p.lag = 9000
	step() // 8000 events in the last second
	if st := th.State(); st.Rate != 4000 || !st.Throttled {
		t.Fatalf("first cut: %+v, want 4000 (half the observed 8000/s)", st)
	}
	p.lag = 0
	for range 5 { // +800 a step: 4800 .. 7200, then 8000 lifts the limit
		step()
	}
	if st := th.State(); st.Rate != 0 || st.Throttled {
		t.Fatalf("recovered: %+v, want unlimited", st)
	}
}

func TestThrottleWait(t *testing.T) {
	th, err := NewThrottle(WithMaxRate(20))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := th.Wait(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	// 1000 events at 20/s would take 50s: the wait ends with the context.
	if err := th.Wait(short, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the deadline = %v, want context.DeadlineExceeded", err)
	}
	free, err := NewThrottle()
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	if err := free.Wait(context.Background(), 1_000_000); err != nil {
		t.Fatalf("unlimited Wait = %v", err)
	}
}

func TestThrottleMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := &fakeProbes{lag: 7000}
	th, step := newTestThrottle(t, p, WithMaxRate(1000), WithThrottleRegisterer(reg))
	step()
	want := `
# HELP prism_replay_throttle_max_rate The backfill throttle's hard cap in events per second; 0 is none.
# TYPE prism_replay_throttle_max_rate gauge
prism_replay_throttle_max_rate 1000
# HELP prism_replay_throttle_rate Events per second the backfill throttle allows now; 0 is unlimited.
# TYPE prism_replay_throttle_rate gauge
prism_replay_throttle_rate 500
# HELP prism_replay_throttled 1 while the adaptive throttle holds the backfill below its cap because live targets lag or the target is slow.
# TYPE prism_replay_throttled gauge
prism_replay_throttled 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	_ = th
}

func TestThrottleOptionsValidate(t *testing.T) {
	probe := func(context.Context) (uint64, error) { return 0, nil }
	tests := []struct {
		name string
		opt  ThrottleOption
	}{
		{"negative max rate", WithMaxRate(-1)},
		{"zero min rate", WithMinRate(0)},
		{"lag probe without threshold", WithLagProbe(probe, 0)},
		{"nil lag probe", WithLagProbe(nil, 10)},
		{"latency probe without threshold", WithLatencyProbe(func(context.Context) (time.Duration, error) { return 0, nil }, 0)},
		{"short interval", WithThrottleInterval(time.Millisecond)},
		{"decrease of 1", WithDecrease(1)},
		{"nil registerer", WithThrottleRegisterer(nil)},
		{"nil logger", WithThrottleLogger(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewThrottle(tt.opt); !errors.Is(err, ErrInvalidThrottleOption) {
				t.Fatalf("NewThrottle = %v, want ErrInvalidThrottleOption", err)
			}
		})
	}
}

// The controller goroutine runs on its own with a probe, and Close stops
// it.
func TestThrottleControllerRuns(t *testing.T) {
	th, err := NewThrottle(WithMaxRate(1000), WithThrottleInterval(10*time.Millisecond),
		WithLagProbe(func(context.Context) (uint64, error) { return 10, nil }, 1))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second) // generous: a tick is 10ms
	for !th.State().Throttled {
		if time.Now().After(deadline) {
			t.Fatal("the controller never cut the rate")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := th.Close(); err != nil {
		t.Fatal(err)
	}
	if err := th.Close(); err != nil {
		t.Fatal(err)
	}
}
