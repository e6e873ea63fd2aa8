// Package progress shows the progress of long work that follows a stream
// (a replay, a migration backfill): a Meter turns samples of a checkpoint,
// the stream's head and a throttle into done/total, rate, ETA and lag, and
// a Reporter prints them until stopped, as a bar on a terminal and as
// plain lines otherwise.
package progress

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/prism-data/prism/replay"
)

// RateWindow is how far back the rate shown (and the ETA from it) looks:
// long enough to smooth batches, short enough to follow a throttle.
const RateWindow = 10 * time.Second

// sample is the applied checkpoint at one instant.
type sample struct {
	at      time.Time
	applied uint64
}

// Meter turns samples of a replay's checkpoint, the stream's head
// and the throttle into what progress output shows. It is used from one
// goroutine.
type Meter struct {
	start   uint64 // the target's checkpoint when the replay started
	stopAt  uint64 // the last sequence to apply; 0 while following the head
	began   time.Time
	mem     bool
	samples []sample
	peak    Mem
}

// Snapshot is the progress at one instant.
type Snapshot struct {
	// Done and Total count stream sequences from the start checkpoint:
	// applied − start of stopAt − start (the head − start when following).
	Done, Total uint64
	Applied     uint64
	// Rate is sequences applied per second over the last RateWindow.
	Rate float64
	// ETA is the time left at Rate; negative when unknown.
	ETA time.Duration
	// Head is the stream's last sequence, Lag the head − Applied.
	Head, Lag uint64
	// Throttle is the throttle's state; nil without one.
	Throttle *replay.ThrottleState
	// Mem is the process's memory, with --mem.
	Mem *Mem
	// Elapsed is the time since the replay began.
	Elapsed time.Duration
}

// NewMeter returns a meter of work from checkpoint start to stopAt (0:
// following the stream's head), begun at began; mem adds the process's
// memory to each snapshot and keeps its peak.
func NewMeter(start, stopAt uint64, began time.Time, mem bool) *Meter {
	return &Meter{start: start, stopAt: stopAt, began: began, mem: mem}
}

// Observe records the applied checkpoint and head at now and returns the
// progress.
func (m *Meter) Observe(now time.Time, applied, head uint64, th *replay.ThrottleState) Snapshot {
	m.samples = append(m.samples, sample{now, applied})
	cut := 0
	for cut < len(m.samples)-2 && now.Sub(m.samples[cut+1].at) >= RateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
	s := Snapshot{Applied: applied, Head: max(head, applied), Throttle: th, ETA: -1, Elapsed: now.Sub(m.began)}
	s.Lag = s.Head - applied
	end := m.stopAt
	if end == 0 {
		end = s.Head
	}
	s.Done, s.Total = sub(applied, m.start), sub(max(end, applied), m.start)
	if first := m.samples[0]; now.After(first.at) && applied >= first.applied {
		s.Rate = float64(applied-first.applied) / now.Sub(first.at).Seconds()
	}
	switch left := s.Total - s.Done; {
	case left == 0:
		s.ETA = 0
	case s.Rate > 0:
		s.ETA = time.Duration(float64(left) / s.Rate * float64(time.Second))
	}
	if m.mem {
		ms := ReadMem()
		m.peak.Heap, m.peak.RSS = max(m.peak.Heap, ms.Heap), max(m.peak.RSS, ms.RSS)
		s.Mem = &ms
	}
	return s
}

// Peak is the highest memory seen, with mem.
func (m *Meter) Peak() Mem { return m.peak }

// sub is a − b, or 0 when b is larger.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// Facts is what follows the counts on a progress line: rate, ETA, lag,
// throttle, memory.
func (s Snapshot) Facts() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s events/s", HumanCount(s.Rate))
	if s.ETA >= 0 {
		fmt.Fprintf(&b, ", ETA %s", s.ETA.Round(time.Second))
	} else {
		b.WriteString(", ETA -")
	}
	fmt.Fprintf(&b, ", lag %d behind head %d", s.Lag, s.Head)
	if th := s.Throttle; th != nil {
		switch {
		case th.Throttled:
			fmt.Fprintf(&b, ", throttled to %s events/s (%s)", HumanCount(th.Rate), th.Reason)
		case th.Rate > 0:
			fmt.Fprintf(&b, ", max rate %s events/s", HumanCount(th.Rate))
		}
	}
	if s.Mem != nil {
		fmt.Fprintf(&b, ", heap %s, rss %s", MiB(s.Mem.Heap), MiB(s.Mem.RSS))
	}
	return b.String()
}

// Line is the plain progress line of s: the same facts as the bar.
func (s Snapshot) Line(name string) string {
	pct := 100.0
	if s.Total > 0 {
		pct = 100 * float64(s.Done) / float64(s.Total)
	}
	return fmt.Sprintf("%s: %d/%d events (%.1f%%), %s", name, s.Done, s.Total, pct, s.Facts())
}

// Mem is the process's memory at one instant.
type Mem struct {
	// Heap is the Go heap in use (runtime.MemStats.HeapInuse).
	Heap uint64
	// RSS is the resident set size (Linux; 0 elsewhere).
	RSS uint64
}

// ReadMem samples the process's memory. ReadMemStats stops the world for
// a moment: fine once a progress tick.
func ReadMem() Mem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Mem{Heap: ms.HeapInuse, RSS: rss()}
}

// rss reads the resident set size from /proc/self/status; 0 if it cannot.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// MiB prints n bytes in mebibytes.
func MiB(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Source is where a reporter reads a running replay from.
type Source struct {
	// Applied is the target's checkpoint.
	Applied func() uint64
	// Head is the stream's last sequence.
	Head func() uint64
	// Throttle is the throttle's state; it may return nil.
	Throttle func() *replay.ThrottleState
}

// Reporter shows a replay's progress until stopped: a bar on a
// terminal (mpb), plain lines every interval otherwise.
type Reporter struct {
	name     string
	src      Source
	meter    *Meter
	out      io.Writer
	tty      bool
	interval time.Duration

	last atomic.Pointer[Snapshot]
	stop chan struct{}
	wg   sync.WaitGroup
}

// IsTerminal says whether w is a terminal, where progress is a bar.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Start starts reporting to out; Stop ends it and returns the last
// snapshot.
func Start(name string, src Source, meter *Meter, out io.Writer, interval time.Duration) *Reporter {
	r := &Reporter{name: name, src: src, meter: meter, out: out, tty: IsTerminal(out), interval: interval, stop: make(chan struct{})}
	r.sample()
	if r.tty {
		r.wg.Go(r.runBar)
	} else {
		r.wg.Go(r.runLines)
	}
	return r
}

// sample observes the replay now.
func (r *Reporter) sample() Snapshot {
	s := r.meter.Observe(time.Now(), r.src.Applied(), r.src.Head(), r.src.Throttle())
	r.last.Store(&s)
	return s
}

func (r *Reporter) runLines() {
	tk := time.NewTicker(r.interval)
	defer tk.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tk.C:
			fmt.Fprintln(r.out, r.sample().Line(r.name))
		}
	}
}

// BarTick is how often the bar's numbers are sampled.
const BarTick = 250 * time.Millisecond

func (r *Reporter) runBar() {
	p := mpb.New(mpb.WithOutput(r.out), mpb.WithWidth(40), mpb.WithRefreshRate(BarTick))
	snap := func() Snapshot { return *r.last.Load() }
	bar := p.AddBar(int64(max(snap().Total, 1)),
		mpb.PrependDecorators(
			decor.Name(r.name+" "),
			decor.Any(func(decor.Statistics) string {
				s := snap()
				return fmt.Sprintf("%d/%d", s.Done, s.Total)
			}, decor.WCSyncSpaceR),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string { return " " + snap().Facts() }),
		),
	)
	tk := time.NewTicker(BarTick)
	defer tk.Stop()
	for {
		s := r.sample()
		bar.SetTotal(int64(max(s.Total, 1)), false)
		bar.SetCurrent(int64(s.Done))
		select {
		case <-r.stop:
			s = r.sample()
			bar.SetCurrent(int64(s.Done))
			if s.Total > 0 && s.Done >= s.Total {
				bar.SetTotal(int64(s.Total), true)
			} else {
				bar.Abort(false)
			}
			p.Wait()
			return
		case <-tk.C:
		}
	}
}

// Peak is the highest memory the meter saw; call it after Stop.
func (r *Reporter) Peak() Mem { return r.meter.Peak() }

// Stop ends the reporting and returns the final snapshot, printed as a last
// line when the output is plain.
func (r *Reporter) Stop() Snapshot {
	close(r.stop)
	r.wg.Wait()
	s := r.sample()
	if !r.tty {
		fmt.Fprintln(r.out, s.Line(r.name))
	}
	return s
}

// HumanCount prints n as 950, 12.3k or 1.25M.
func HumanCount(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
