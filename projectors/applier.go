package projectors

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// change is one decoded event with the stream sequence it was stored at:
// a *prismv1.KeyValueChange, a *prismv1.TimeSeriesChange or a
// *prismv1.LogChange.
type change interface {
	GetSeq() uint64
}

// applier is what the loop needs to know about a data abstraction: how its
// events decode and how its target applies them. The loop itself (batching,
// checkpoints, acks, dead letters, retries) is the same for every
// abstraction.
type applier interface {
	// abstraction names the data abstraction, for logs.
	abstraction() string
	// checkpoint returns the target's checkpoint.
	checkpoint(ctx context.Context) (uint64, error)
	// decode returns the change of m, stored at seq; nil and no error for
	// an idempotency marker; an error wrapping subjects.ErrBadEvent for a
	// poison event.
	decode(m jetstream.Msg, seq uint64) (change, error)
	// apply applies changes, all made by decode, and sets the checkpoint
	// to through, under the target's contract.
	apply(ctx context.Context, changes []change, through uint64) error
	// ids returns the id each of changes (all made by decode) changed, in
	// order: a record id, a series id or a log key.
	ids(changes []change) [][]byte
}

// idsOf returns id(c) of each of changes, all of type C.
func idsOf[C change](changes []change, id func(C) []byte) [][]byte {
	ids := make([][]byte, len(changes))
	for i, c := range changes {
		ids[i] = id(c.(C))
	}
	return ids
}

// keyValue adapts a KeyValueTarget.
type keyValue struct{ t KeyValueTarget }

func (keyValue) abstraction() string { return subjects.AbstractionKeyValue }

func (a keyValue) checkpoint(ctx context.Context) (uint64, error) { return a.t.Checkpoint(ctx) }

func (keyValue) decode(m jetstream.Msg, seq uint64) (change, error) {
	ev, err := subjects.DecodeKeyValueEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil || ev == nil {
		return nil, err
	}
	return &prismv1.KeyValueChange{Seq: seq, Event: ev}, nil
}

func (a keyValue) apply(ctx context.Context, changes []change, through uint64) error {
	typed := make([]*prismv1.KeyValueChange, len(changes))
	_, resolves := a.t.(*chunkResolver)
	for i, c := range changes {
		typed[i] = c.(*prismv1.KeyValueChange)
		if !resolves && hasChunked(typed[i].GetEvent()) {
			return ErrChunkedUnresolved
		}
	}
	return a.t.ApplyKeyValue(ctx, typed, through)
}

func (keyValue) ids(changes []change) [][]byte {
	return idsOf(changes, func(c *prismv1.KeyValueChange) []byte { return c.GetEvent().GetId() })
}

// timeSeries adapts a TimeSeriesTarget.
type timeSeries struct{ t TimeSeriesTarget }

func (timeSeries) abstraction() string { return subjects.AbstractionTimeSeries }

func (a timeSeries) checkpoint(ctx context.Context) (uint64, error) { return a.t.Checkpoint(ctx) }

func (timeSeries) decode(m jetstream.Msg, seq uint64) (change, error) {
	app, err := subjects.DecodeTimeSeriesEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil || app == nil {
		return nil, err
	}
	return &prismv1.TimeSeriesChange{Seq: seq, Append: app}, nil
}

func (a timeSeries) apply(ctx context.Context, changes []change, through uint64) error {
	typed := make([]*prismv1.TimeSeriesChange, len(changes))
	for i, c := range changes {
		typed[i] = c.(*prismv1.TimeSeriesChange)
	}
	return a.t.ApplyTimeSeries(ctx, typed, through)
}

func (timeSeries) ids(changes []change) [][]byte {
	return idsOf(changes, func(c *prismv1.TimeSeriesChange) []byte { return c.GetAppend().GetSeriesId() })
}
