package main

import (
	"context"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/bench"
	"github.com/prism-data/prism/namespaces"
)

// benchStack is the embedded Prism of prism bench: the stack prism serve
// runs, on embedded NATS.
type benchStack struct {
	st *stack
	sf serveFlags
}

var _ bench.Embedded = benchStack{}

// startBenchStack starts a stack as c describes, its NATS server on a free
// port of 127.0.0.1, serving c.Namespace.
func startBenchStack(ctx context.Context, c bench.EmbeddedConfig) (bench.Embedded, error) {
	sf := serveFlags{
		dataDir:      c.DataDir,
		natsListen:   "127.0.0.1:0", // any free port (see serverPort)
		syncAlways:   c.SyncAlways,
		drainTimeout: 15 * time.Second,
		postgresDSN:  c.PostgresDSN,
	}
	st, err := startStack(ctx, sf, c.Logger, seed{namespaces: []namespaces.Namespace{c.Namespace}, by: c.By})
	if err != nil {
		return nil, err
	}
	return benchStack{st: st, sf: sf}, nil
}

func (b benchStack) URL() string                    { return b.st.URL(b.sf) }
func (b benchStack) JetStream() jetstream.JetStream { return b.st.js }
func (b benchStack) Server() *server.Server         { return b.st.ns }

func (b benchStack) Close(ctx context.Context) error {
	b.st.Close(ctx)
	return nil
}
