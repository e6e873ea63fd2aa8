package progress

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prism-data/prism/replay"
)

var progressLine = regexp.MustCompile(`: (\d+)/(\d+) events \(`)

// The meter's numbers, from samples at known instants.
func TestProgressMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewMeter(100, 1100, t0, false)
	m.Observe(t0, 100, 2000, nil)
	s := m.Observe(t0.Add(2*time.Second), 300, 2000, nil)
	if s.Done != 200 || s.Total != 1000 || s.Rate != 100 || s.ETA != 8*time.Second || s.Lag != 1700 {
		t.Fatalf("snapshot %+v", s)
	}
	th := &replay.ThrottleState{Rate: 50, MaxRate: 100, Throttled: true, Reason: "primary lag 12000 > 5000"}
	line := m.Observe(t0.Add(4*time.Second), 500, 2100, th).Line("replay orders→x")
	wantLine := "replay orders→x: 400/1000 events (40.0%), 100 events/s, ETA 6s, lag 1600 behind head 2100, throttled to 50 events/s (primary lag 12000 > 5000)"
	if line != wantLine {
		t.Fatalf("line\n %q\nwant\n %q", line, wantLine)
	}
	// Following the head: the total grows with it.
	f := NewMeter(0, 0, t0, true)
	s = f.Observe(t0.Add(time.Second), 10, 40, nil)
	if s.Total != 40 || s.Mem == nil || s.Mem.Heap == 0 {
		t.Fatalf("following: %+v", s)
	}
	if n, _ := strconv.Atoi(progressLine.FindStringSubmatch(s.Line("x"))[2]); n != 40 {
		t.Fatalf("following line %q", s.Line("x"))
	}
}
