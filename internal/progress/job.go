package progress

import (
	"fmt"
	"io"
	"time"

	"github.com/prism-data/prism/replay"
)

// JobOutput prints what a replay job does, as prism replay shows it: the
// events of its JobEvents on Out (a consumer it could not delete on
// ErrOut), its progress while it runs (StartJob), and with Finish its
// summary.
type JobOutput struct {
	// Name is how the lines call the job ("replay orders→rebuild").
	Name        string
	Out, ErrOut io.Writer
	// Mem adds the process's memory to the progress and its peak to the
	// summary; Interval is how often a plain progress line is printed.
	Mem      bool
	Interval time.Duration

	namespace string
	storage   fmt.Stringer
	rep       *Reporter
}

// Events are the JobEvents, printing to o, of a job that replays
// namespace into the target kept in storage.
func (o *JobOutput) Events(namespace string, storage fmt.Stringer) replay.JobEvents {
	o.namespace, o.storage = namespace, storage
	return replay.JobEvents{
		Dropped: func(where string) { fmt.Fprintf(o.Out, "%s: dropped %s\n", o.Name, where) },
		Skipped: func(from uint64) {
			fmt.Fprintf(o.Out, "%s: new target starts at sequence %d; events 1 to %d are skipped\n", o.Name, from, from-1)
		},
		Started: func(run *replay.Running) {
			stop := "the head, following"
			if run.StopAt > 0 {
				stop = fmt.Sprint(run.StopAt)
			}
			fmt.Fprintf(o.Out, "%s: from checkpoint %d to %s into %s\n", o.Name, run.Start, stop, storage)
			o.rep = StartJob(o.Name, run, o.Mem, o.Out, o.Interval)
		},
		ConsumerKept: func(consumer string, err error) {
			fmt.Fprintf(o.ErrOut, "%s: could not delete consumer %s (delete it yourself: it holds compaction back): %v\n", o.Name, consumer, err)
		},
	}
}

// Finish stops the progress of a job that ran and prints its summary,
// or, when it succeeded (err nil) without running, why there was nothing
// to replay.
func (o *JobOutput) Finish(res replay.Result, err error) {
	if o.rep != nil {
		fmt.Fprintln(o.Out, o.rep.Stop().Summary(o.Name, res.StopAt))
		if peak := o.rep.Peak(); o.Mem {
			fmt.Fprintf(o.Out, "%s: peak heap %s, peak rss %s\n", o.Name, MiB(peak.Heap), MiB(peak.RSS))
		}
	}
	switch {
	case err != nil:
	case res.EmptyStream:
		fmt.Fprintf(o.Out, "%s: nothing to replay: the stream of %s holds no event\n", o.Name, o.namespace)
	case res.UpToDate:
		fmt.Fprintf(o.Out, "%s: nothing to replay: the target's checkpoint %d is at or past sequence %d (%s)\n", o.Name, res.Start, res.StopAt, o.storage)
	}
}

// StartJob starts reporting the running replay job run as name (see
// Start); mem adds the process's memory.
func StartJob(name string, run *replay.Running, mem bool, out io.Writer, interval time.Duration) *Reporter {
	src := Source{
		Applied:  func() uint64 { return run.Progress().Applied },
		Head:     func() uint64 { return run.Progress().Head },
		Throttle: func() *replay.ThrottleState { return run.Progress().Throttle },
	}
	return Start(name, src, NewMeter(run.Start, run.StopAt, run.Began, mem), out, interval)
}

// Summary is the last line of a replay that was to stop at stopAt (0:
// following): the events it applied, how fast, and where it stands.
func (s Snapshot) Summary(name string, stopAt uint64) string {
	rate := 0.0
	if secs := s.Elapsed.Seconds(); secs > 0 {
		rate = float64(s.Done) / secs
	}
	verb := "replayed"
	if stopAt > 0 && s.Applied < stopAt {
		verb = "stopped after"
	}
	return fmt.Sprintf("%s: %s %d events in %s (%s events/s on average); checkpoint %d, %d behind the stream's head %d",
		name, verb, s.Done, s.Elapsed.Round(time.Millisecond), HumanCount(rate), s.Applied, s.Lag, s.Head)
}
