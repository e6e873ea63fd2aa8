// Package natstest runs in-process NATS servers with JetStream for tests,
// and finds the standalone one (Standalone) that tests use to prove Prism
// works with a server it did not start.
//
// Every helper takes a testing.TB, marks itself with t.Helper, fails the test
// with t.Fatal when it cannot do its job, and releases what it made with
// t.Cleanup. Call them from the test goroutine.
//
// The package imports only the nats libraries and subjects, so that the
// tests of every Prism package (gateway, projectors, backends) can use it
// without depending on one another.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// readyTimeout bounds how long Server waits for the server to accept
// connections.
const readyTimeout = 10 * time.Second

// Stream settings of a namespace stream. They must match what
// namespaces.EnsureStreams creates; namespaces' TestNamespaceStreamsMatchEnsureStreams
// checks that they do.
const (
	duplicateWindow  = 2 * time.Minute
	maxStreamMsgSize = 1 << 20
)

// Server starts an in-process NATS server with JetStream on, listening on a
// random port, storing in t.TempDir(), with logging and signal handling off.
// At cleanup it shuts the server down and waits until it has stopped, so the
// store is closed before the directory is removed.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("natstest: server not ready after %v", readyTimeout)
	}
	return s
}

// Connect returns a connection to s that goes through memory, not the
// network, with opts added. The connection is closed at cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s)}, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on nc with opts.
func JetStream(t testing.TB, nc *nats.Conn, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// Start is Server, Connect and JetStream in one: a fresh server, a
// connection to it and a JetStream context on that connection.
func Start(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t, Server(t))
	return nc, JetStream(t, nc)
}

// NamespaceStreams creates the event stream of namespace ns and the
// dead-letter stream with the configuration namespaces.EnsureStreams gives
// them (file storage, limits retention, a 2-minute duplicate window, 1 MiB
// messages, direct get, atomic batch publish and rollups on the event
// stream), and returns the event stream. It fails the test if ns is not a
// valid namespace name or if either stream exists with another
// configuration.
func NamespaceStreams(t testing.TB, js jetstream.JetStream, ns string) jetstream.Stream {
	t.Helper()
	if err := subjects.ValidateNamespace(ns); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               subjects.Stream(ns),
		Description:        "Prism events of namespace " + ns,
		Subjects:           subjects.StreamSubjects(ns),
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Duplicates:         duplicateWindow,
		MaxMsgSize:         maxStreamMsgSize,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		AllowRollup:        true,
	})
	if err != nil {
		t.Fatalf("natstest: create stream of namespace %s: %v", ns, err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        subjects.DeadLetterStream,
		Description: "Prism dead letters of every namespace",
		Subjects:    subjects.DeadLetterSubjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		AllowDirect: true,
	}); err != nil {
		t.Fatalf("natstest: create dead-letter stream: %v", err)
	}
	return s
}

// Msg returns the message stored at seq in the stream named stream.
func Msg(t testing.TB, js jetstream.JetStream, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatalf("natstest: stream %s: get msg %d: %v", stream, seq, err)
	}
	return m
}

// Msgs returns every message of the stream named stream, in order. It fails
// the test if a sequence between the first and the last is missing (the
// stream had a message deleted).
func Msgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("natstest: stream %s: info: %v", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	out := make([]*jetstream.RawStreamMsg, 0, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("natstest: stream %s: get msg %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}
