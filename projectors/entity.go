package projectors

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// entity adapts an EntityTarget.
type entity struct{ t EntityTarget }

func (entity) abstraction() string { return subjects.AbstractionEntity }

func (a entity) checkpoint(ctx context.Context) (uint64, error) { return a.t.Checkpoint(ctx) }

func (entity) decode(m jetstream.Msg, seq uint64) (change, error) {
	ev, err := subjects.DecodeEntityEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil || ev == nil {
		return nil, err
	}
	return &prismv1.EntityChange{Seq: seq, Event: ev, Lineage: subjects.EntityLineageOf(m.Headers(), seq)}, nil
}

func (a entity) apply(ctx context.Context, changes []change, through uint64) error {
	typed := make([]*prismv1.EntityChange, len(changes))
	for i, c := range changes {
		typed[i] = c.(*prismv1.EntityChange)
	}
	return a.t.ApplyEntity(ctx, typed, through)
}

func (entity) ids(changes []change) [][]byte {
	return idsOf(changes, func(c *prismv1.EntityChange) []byte { return c.GetEvent().GetId() })
}
