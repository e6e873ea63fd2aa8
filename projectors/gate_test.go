package projectors_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// gateTimeout bounds how long a test waits for a gate or hook to fire:
// only a broken projector makes it run out.
const gateTimeout = 20 * time.Second

// applyGate holds one apply call of a recorder (see recorder.gate): the
// first whose (changes, through) match says so blocks until open is
// called or the call's ctx ends (the projector aborted). Every other call
// passes. It tells a test that a batch is in hand, and which.
type applyGate struct {
	match func(changes []*prismv1.KeyValueChange, through uint64) bool

	mu      sync.Mutex
	fired   bool
	reached chan struct{} // closed once the matching call is held
	through uint64        // of the held call; set before reached closes
	opened  sync.Once
	release chan struct{}
	done    chan struct{} // closed once the held call returned
	err     error         // what it returned; set before done closes
}

func newApplyGate(match func(changes []*prismv1.KeyValueChange, through uint64) bool) *applyGate {
	return &applyGate{match: match, reached: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
}

// hold is the recorder's gate function.
func (g *applyGate) hold(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error {
	g.mu.Lock()
	held := !g.fired && g.match(changes, through)
	g.fired = g.fired || held
	g.mu.Unlock()
	if !held {
		return nil
	}
	g.through = through
	close(g.reached)
	select {
	case <-g.release:
	case <-ctx.Done():
		g.err = ctx.Err()
	}
	close(g.done)
	return g.err
}

// open lets the held call (and any later one) go on. It is idempotent.
func (g *applyGate) open() { g.opened.Do(func() { close(g.release) }) }

// waitHeld waits until the matching call is held and returns its through.
func (g *applyGate) waitHeld(tb testing.TB) uint64 {
	tb.Helper()
	select {
	case <-g.reached:
		return g.through
	case <-time.After(gateTimeout):
		tb.Fatalf("no apply call matched the gate within %v", gateTimeout)
		return 0
	}
}

// waitReturned waits until the held call returned and returns its error:
// nil when it was opened, the ctx's error when the projector aborted it.
func (g *applyGate) waitReturned(tb testing.TB) error {
	tb.Helper()
	select {
	case <-g.done:
		return g.err
	case <-time.After(gateTimeout):
		tb.Fatalf("the held apply call did not return within %v", gateTimeout)
		return nil
	}
}

// waitingCtx is a context that reports when someone first asks for its
// Done channel: a Stop(ctx) that honours ctx does so when it starts to
// wait for the loop, and not before it has asked the loop to stop.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitingCtx(ctx context.Context) *waitingCtx {
	return &waitingCtx{Context: ctx, waiting: make(chan struct{})}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// logHook is a slog.Handler that passes records to next and sends on ch
// (without blocking) each time a record with message msg is handled: a
// trigger for the moments the projector only logs.
type logHook struct {
	next slog.Handler
	msg  string
	ch   chan<- struct{}
}

func hookedLogger(tb testing.TB, msg string, ch chan<- struct{}) *slog.Logger {
	return slog.New(logHook{next: testLogger(tb).Handler(), msg: msg, ch: ch})
}

func (h logHook) Enabled(context.Context, slog.Level) bool { return true }

func (h logHook) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h logHook) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHook{next: h.next.WithAttrs(attrs), msg: h.msg, ch: h.ch}
}

func (h logHook) WithGroup(name string) slog.Handler {
	return logHook{next: h.next.WithGroup(name), msg: h.msg, ch: h.ch}
}
