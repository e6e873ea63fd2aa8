package client

import (
	"errors"
	"fmt"
	"time"
)

// DefaultSubscribeBuffer is how many changes a Subscription pulls ahead of
// the reader unless WithBuffer says otherwise.
const DefaultSubscribeBuffer = 256

// MinSubscribeBuffer is the smallest WithBuffer. With pull batches of a
// few messages, nats.go v1.55's pull iterator sometimes stops asking for
// more until its heartbeat check recreates the consumer, about 10 s later
// (ADR 006).
const MinSubscribeBuffer = 16

// MaxSubscribeBuffer is the largest WithBuffer.
const MaxSubscribeBuffer = 100_000

// SubscribeOption configures a Subscribe: where to start (FromSeq, FromTime,
// NewOnly; default: the first change the stream still holds) and how far to
// read ahead (WithBuffer). At most one start option may be given.
type SubscribeOption func(*subscribeOpts) error

type startKind int

const (
	startAll startKind = iota
	startSeq
	startTime
	startNew
)

type subscribeOpts struct {
	start    startKind
	startSet bool
	seq      uint64
	time     time.Time
	buffer   int
}

func (o *subscribeOpts) setStart(k startKind) error {
	if o.startSet {
		return errors.New("only one of FromSeq, FromTime and NewOnly may be given")
	}
	o.start, o.startSet = k, true
	return nil
}

// FromSeq starts at stream sequence seq (≥ 1): the first change delivered is
// the one stored at seq, or the next one after it. Resume a subscription
// with FromSeq(sub.LastSeq()+1).
func FromSeq(seq uint64) SubscribeOption {
	return func(o *subscribeOpts) error {
		if seq == 0 {
			return errors.New("FromSeq: sequences start at 1")
		}
		o.seq = seq
		return o.setStart(startSeq)
	}
}

// FromTime starts at the first change the stream stored at or after t (the
// time in Change.Time).
func FromTime(t time.Time) SubscribeOption {
	return func(o *subscribeOpts) error {
		if t.IsZero() {
			return errors.New("FromTime: zero time")
		}
		o.time = t
		return o.setStart(startTime)
	}
}

// NewOnly delivers only changes stored after the subscription was opened.
func NewOnly() SubscribeOption {
	return func(o *subscribeOpts) error { return o.setStart(startNew) }
}

// WithBuffer sets how many changes the subscription pulls from the server
// before the reader asks for them, MinSubscribeBuffer to MaxSubscribeBuffer (default
// DefaultSubscribeBuffer). When that many are waiting, the subscription
// stops pulling until the reader catches up.
func WithBuffer(n int) SubscribeOption {
	return func(o *subscribeOpts) error {
		if n < MinSubscribeBuffer || n > MaxSubscribeBuffer {
			return fmt.Errorf("WithBuffer: %d is not in [%d, %d]", n, MinSubscribeBuffer, MaxSubscribeBuffer)
		}
		o.buffer = n
		return nil
	}
}
