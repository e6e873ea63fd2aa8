package main

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

// rateWindow is how far back the rate shown (and the ETA from it) looks:
// long enough to smooth batches, short enough to follow a throttle.
const rateWindow = 10 * time.Second

// progressSample is the applied checkpoint at one instant.
type progressSample struct {
	at      time.Time
	applied uint64
}

// progressMeter turns samples of a replay's checkpoint, the stream's head
// and the throttle into what progress output shows. It is used from one
// goroutine.
type progressMeter struct {
	start   uint64 // the target's checkpoint when the replay started
	stopAt  uint64 // the last sequence to apply; 0 while following the head
	began   time.Time
	mem     bool
	samples []progressSample
	peak    memSample
}

// progressSnapshot is the progress at one instant.
type progressSnapshot struct {
	// Done and Total count stream sequences from the start checkpoint:
	// applied − start of stopAt − start (the head − start when following).
	Done, Total uint64
	Applied     uint64
	// Rate is sequences applied per second over the last rateWindow.
	Rate float64
	// ETA is the time left at Rate; negative when unknown.
	ETA time.Duration
	// Head is the stream's last sequence, Lag the head − Applied.
	Head, Lag uint64
	// Throttle is the throttle's state; nil without one.
	Throttle *replay.ThrottleState
	// Mem is the process's memory, with --mem.
	Mem *memSample
	// Elapsed is the time since the replay began.
	Elapsed time.Duration
}

func newProgressMeter(start, stopAt uint64, began time.Time, mem bool) *progressMeter {
	return &progressMeter{start: start, stopAt: stopAt, began: began, mem: mem}
}

// observe records the applied checkpoint and head at now and returns the
// progress.
func (m *progressMeter) observe(now time.Time, applied, head uint64, th *replay.ThrottleState) progressSnapshot {
	m.samples = append(m.samples, progressSample{now, applied})
	cut := 0
	for cut < len(m.samples)-2 && now.Sub(m.samples[cut+1].at) >= rateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
	s := progressSnapshot{Applied: applied, Head: max(head, applied), Throttle: th, ETA: -1, Elapsed: now.Sub(m.began)}
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
		ms := readMem()
		m.peak.Heap, m.peak.RSS = max(m.peak.Heap, ms.Heap), max(m.peak.RSS, ms.RSS)
		s.Mem = &ms
	}
	return s
}

// sub is a − b, or 0 when b is larger.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// facts is what follows the counts on a progress line: rate, ETA, lag,
// throttle, memory.
func (s progressSnapshot) facts() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s events/s", humanCount(s.Rate))
	if s.ETA >= 0 {
		fmt.Fprintf(&b, ", ETA %s", s.ETA.Round(time.Second))
	} else {
		b.WriteString(", ETA -")
	}
	fmt.Fprintf(&b, ", lag %d behind head %d", s.Lag, s.Head)
	if th := s.Throttle; th != nil {
		switch {
		case th.Throttled:
			fmt.Fprintf(&b, ", throttled to %s events/s (%s)", humanCount(th.Rate), th.Reason)
		case th.Rate > 0:
			fmt.Fprintf(&b, ", max rate %s events/s", humanCount(th.Rate))
		}
	}
	if s.Mem != nil {
		fmt.Fprintf(&b, ", heap %s, rss %s", mib(s.Mem.Heap), mib(s.Mem.RSS))
	}
	return b.String()
}

// line is the plain progress line of s: the same facts as the bar.
func (s progressSnapshot) line(name string) string {
	pct := 100.0
	if s.Total > 0 {
		pct = 100 * float64(s.Done) / float64(s.Total)
	}
	return fmt.Sprintf("%s: %d/%d events (%.1f%%), %s", name, s.Done, s.Total, pct, s.facts())
}

// memSample is the process's memory at one instant.
type memSample struct {
	// Heap is the Go heap in use (runtime.MemStats.HeapInuse).
	Heap uint64
	// RSS is the resident set size (Linux; 0 elsewhere).
	RSS uint64
}

// readMem samples the process's memory. ReadMemStats stops the world for
// a moment: fine once a progress tick.
func readMem() memSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{Heap: ms.HeapInuse, RSS: rss()}
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

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressSource is where a reporter reads a running replay from.
type progressSource struct {
	applied  func() uint64
	head     func() uint64
	throttle func() *replay.ThrottleState
}

// progressReporter shows a replay's progress until stopped: a bar on a
// terminal (mpb), plain lines every interval otherwise.
type progressReporter struct {
	name     string
	src      progressSource
	meter    *progressMeter
	out      io.Writer
	tty      bool
	interval time.Duration

	last atomic.Pointer[progressSnapshot]
	stop chan struct{}
	wg   sync.WaitGroup
}

// isTerminal says whether w is a terminal, where progress is a bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// startProgress starts reporting to out; Stop ends it and returns the last
// snapshot.
func startProgress(name string, src progressSource, meter *progressMeter, out io.Writer, interval time.Duration) *progressReporter {
	r := &progressReporter{name: name, src: src, meter: meter, out: out, tty: isTerminal(out), interval: interval, stop: make(chan struct{})}
	r.sample()
	if r.tty {
		r.wg.Go(r.runBar)
	} else {
		r.wg.Go(r.runLines)
	}
	return r
}

// sample observes the replay now.
func (r *progressReporter) sample() progressSnapshot {
	s := r.meter.observe(time.Now(), r.src.applied(), r.src.head(), r.src.throttle())
	r.last.Store(&s)
	return s
}

func (r *progressReporter) runLines() {
	tk := time.NewTicker(r.interval)
	defer tk.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tk.C:
			fmt.Fprintln(r.out, r.sample().line(r.name))
		}
	}
}

// barTick is how often the bar's numbers are sampled.
const barTick = 250 * time.Millisecond

func (r *progressReporter) runBar() {
	p := mpb.New(mpb.WithOutput(r.out), mpb.WithWidth(40), mpb.WithRefreshRate(barTick))
	snap := func() progressSnapshot { return *r.last.Load() }
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
			decor.Any(func(decor.Statistics) string { return " " + snap().facts() }),
		),
	)
	tk := time.NewTicker(barTick)
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

// Stop ends the reporting and returns the final snapshot, printed as a last
// line when the output is plain.
func (r *progressReporter) Stop() progressSnapshot {
	close(r.stop)
	r.wg.Wait()
	s := r.sample()
	if !r.tty {
		fmt.Fprintln(r.out, s.line(r.name))
	}
	return s
}
