package replay

import (
	"context"

	"github.com/prism-data/prism/backends/neptune"
)

// NeptuneTarget is a target in the Neptune cluster at Endpoint, the graph
// Graph (neptune.GraphName of the namespace and target). Requests are
// signed with the AWS SDK's default chain unless Options say otherwise
// (tests). It does not lock: the store's checkpoint guard makes a second
// writer's batches write nothing (docs/neptune.md).
type NeptuneTarget struct {
	Endpoint, Graph string
	Options         []neptune.Option
}

var _ Dropper = NeptuneTarget{}

func (t NeptuneTarget) String() string { return "neptune graph " + t.Graph + " at " + t.Endpoint }

// Open opens the graph's store; nothing is sent before its first call.
func (t NeptuneTarget) Open(ctx context.Context) (Store, func() error, error) {
	st, err := neptune.New(ctx, t.Endpoint, t.Graph, t.Options...)
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// Drop deletes the graph (neptune.Store.Drop).
func (t NeptuneTarget) Drop(ctx context.Context) error {
	st, closeStore, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	return st.(*neptune.Store).Drop(ctx)
}
