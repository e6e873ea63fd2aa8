package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// Stream settings every namespace stream gets.
const (
	// DuplicateWindow is how long JetStream remembers an idempotency token of
	// put and delete (Nats-Msg-Id). Mutate tokens are remembered as long as
	// their marker is kept.
	DuplicateWindow = 2 * time.Minute
	// MaxStreamMsgSize is the largest message a namespace stream accepts:
	// MaxEventBytes of payload plus room for the CloudEvents headers.
	MaxStreamMsgSize = 1 << 20
)

func streamName(ns string) string { return subjects.Stream(ns) }

// EnsureStreams creates the stream of namespace ns, or updates its
// configuration to the one Prism needs (file storage, atomic batch publish,
// direct get, DuplicateWindow, MaxStreamMsgSize), and does the same for the
// dead-letter stream shared by all namespaces.
//
// A timeseries namespace with a Retention gets it as the stream's MaxAge:
// JetStream drops events older than that, measured from when they were
// stored, so replaying the stream never brings back expired events; the
// backend sweeps its own copy by event time. Without a Retention (and for
// keyvalue namespaces) the stream keeps every event; updating a namespace
// to Retention 0 removes a MaxAge set before.
//
// With PublishChanges the stream republishes every stored event to core
// NATS at subjects.Changes(ns) (JetStream's RePublish: original headers and
// data plus Nats-Stream, Nats-Sequence and Nats-Subject); without it, a
// republish set before is removed.
//
// It returns an error for an invalid namespace or when JetStream refuses
// either stream.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, ns Namespace) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	cfg := jetstream.StreamConfig{
		Name:               subjects.Stream(ns.Name),
		Description:        "Prism events of namespace " + ns.Name,
		Subjects:           subjects.StreamSubjects(ns.Name),
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Duplicates:         DuplicateWindow,
		MaxMsgSize:         MaxStreamMsgSize,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
	if ns.Abstraction == AbstractionTimeSeries {
		cfg.MaxAge = time.Duration(ns.Retention)
	}
	if ns.PublishChanges {
		// JetStream republishes each message once it is stored: the
		// fan-out costs no Prism code and sees exactly the stream's order.
		cfg.RePublish = &jetstream.RePublish{
			Source:      subjects.StreamSubjects(ns.Name)[0],
			Destination: subjects.Changes(ns.Name),
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	dlq := jetstream.StreamConfig{
		Name:        subjects.DeadLetterStream,
		Description: "Prism dead letters of every namespace",
		Subjects:    subjects.DeadLetterSubjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		AllowDirect: true,
	}
	if _, err := js.CreateOrUpdateStream(ctx, dlq); err != nil {
		return fmt.Errorf("ensure stream %s: %w", dlq.Name, err)
	}
	return nil
}

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
