package gateway

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// stream returns a handle on the stream of namespace ns, looked up once.
func (g *Gateway) stream(ctx context.Context, ns string) (jetstream.Stream, error) {
	g.streamsMu.Lock()
	s, ok := g.streams[ns]
	g.streamsMu.Unlock()
	if ok {
		return s, nil
	}
	s, err := g.js.Stream(ctx, subjects.Stream(ns))
	if err != nil {
		return nil, err
	}
	g.streamsMu.Lock()
	g.streams[ns] = s
	g.streamsMu.Unlock()
	return s, nil
}
