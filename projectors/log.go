package projectors

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// LogTarget is what a Log projection target must do.
//
// Contract: ApplyLog appends the records of changes (in slice order, which
// is stream order), each keyed by its event's key so that a key's records
// keep stream order, and then sets the checkpoint to through. It skips
// changes whose Seq is at or below the stored checkpoint, changes nothing
// when through is at or below it (ApplyLog(ctx, nil, checkpoint) is how the
// projector probes a sick backend), and blames the changes with an error
// that implements PermanentError with Permanent() == true. Unlike the
// KeyValue and TimeSeries contracts, the records and the checkpoint need
// not commit atomically (Kafka's cannot): the checkpoint must never pass a
// record that is not stored, so a restart resumes with no gap, but a batch
// may be appended again after a failure before its checkpoint. Each
// change carries its CloudEvents attributes (ce-id above all) so that
// consumers of the target can deduplicate: delivery is at-least-once.
// Checkpoint returns the stored checkpoint, 0 for a new target.
//
// Both methods are called from one goroutine at a time.
type LogTarget interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyLog(ctx context.Context, changes []*prismv1.LogChange, through uint64) error
}

// NewLog returns a Projector of namespace's Log appends into t, known as
// target, exactly as New does for KeyValue events: the same options,
// consumer, checkpoints, dead letters and metrics. Every other event of the
// namespace stream is poison to it and is dead-lettered. It does no I/O.
// Errors: as New's.
func NewLog(js jetstream.JetStream, namespace, target string, t LogTarget, opts ...Option) (*Projector, error) {
	if t == nil {
		return nil, errors.New("new projector: nil target")
	}
	return newProjector(js, namespace, target, logApplier{t}, opts)
}

// logApplier adapts a LogTarget.
type logApplier struct{ t LogTarget }

func (logApplier) abstraction() string { return subjects.AbstractionLog }

func (a logApplier) checkpoint(ctx context.Context) (uint64, error) { return a.t.Checkpoint(ctx) }

func (logApplier) decode(m jetstream.Msg, seq uint64) (change, error) {
	ev, err := subjects.DecodeLogEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil || ev == nil {
		return nil, err
	}
	return &prismv1.LogChange{Seq: seq, Event: ev, CloudEvent: subjects.CloudEventHeaders(m.Headers())}, nil
}

func (a logApplier) apply(ctx context.Context, changes []change, through uint64) error {
	typed := make([]*prismv1.LogChange, len(changes))
	for i, c := range changes {
		typed[i] = c.(*prismv1.LogChange)
	}
	return a.t.ApplyLog(ctx, typed, through)
}

func (logApplier) ids(changes []change) [][]byte {
	return idsOf(changes, func(c *prismv1.LogChange) []byte { return c.GetEvent().GetKey() })
}
