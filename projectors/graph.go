package projectors

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// GraphTarget is what a Graph projection target must do.
//
// Contract: the same as KeyValueTarget's, with ApplyGraph in place of
// ApplyKeyValue. ApplyGraph applies changes in slice order (stream order)
// and sets the checkpoint to through in one atomic transaction (a target
// without transactions stores the checkpoint so that a restart resumes
// exactly, and each change is idempotent); it skips changes whose Seq is
// at or below the stored checkpoint and changes nothing when through is
// at or below it. A vertex upsert creates the vertex or replaces its label
// and all its properties; an edge upsert does the same for the edge
// (from, label, to), whether or not its vertices exist; a delete of a
// vertex removes it and every edge into or out of it that exists at that
// point of the batch; a delete of something absent changes nothing. An
// error implementing PermanentError with Permanent() == true blames the
// changes. Checkpoint returns the stored checkpoint, 0 for a new target.
//
// Both methods are called from one goroutine at a time.
type GraphTarget interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error
}

// NewGraph returns a projector of Graph namespace namespace into t, like
// New. Every event other than a vertex or edge event (or a marker) is
// poison to it and is dead-lettered.
func NewGraph(js jetstream.JetStream, namespace, target string, t GraphTarget, opts ...Option) (*Projector, error) {
	if t == nil {
		return nil, errors.New("new projector: nil target")
	}
	return newProjector(js, namespace, target, graph{t}, opts)
}

// graph adapts a GraphTarget.
type graph struct{ t GraphTarget }

func (graph) abstraction() string { return subjects.AbstractionGraph }

func (a graph) checkpoint(ctx context.Context) (uint64, error) { return a.t.Checkpoint(ctx) }

func (graph) decode(m jetstream.Msg, seq uint64) (change, error) {
	ev, err := subjects.DecodeGraphEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil || ev == nil {
		return nil, err
	}
	return &prismv1.GraphChange{Seq: seq, Event: ev}, nil
}

func (a graph) apply(ctx context.Context, changes []change, through uint64) error {
	typed := make([]*prismv1.GraphChange, len(changes))
	for i, c := range changes {
		typed[i] = c.(*prismv1.GraphChange)
	}
	return a.t.ApplyGraph(ctx, typed, through)
}

func (graph) ids(changes []change) [][]byte {
	return idsOf(changes, func(c *prismv1.GraphChange) []byte { return subjects.GraphEventID(c.GetEvent()) })
}
