package namespaces

import (
	"context"
	"errors"
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
	// MaxEventBytes is the largest event payload the gateway accepts (the
	// marshalled prismv1.KeyValueEvent of one put or delete, or
	// prismv1.TimeSeriesAppend of one append, 900 KiB); it keeps every event
	// under the stream's MaxStreamMsgSize with its headers.
	MaxEventBytes = 900 << 10
)

// EnsureStreams is ApplyStreams with the plan Derive makes for ns on one
// node without sync_always: file storage, one replica, DuplicateWindow,
// MaxStreamMsgSize, and the retention of a timeseries namespace as MaxAge.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, ns Namespace) error {
	p, err := Derive(ns, Cluster{Nodes: 1})
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	return ApplyStreams(ctx, js, ns, p)
}

// ApplyStreams creates the stream of namespace ns, or updates it in place,
// with the settings of plan p (replicas, storage, max age, max message size,
// duplicate window; see Derive) and what every Prism stream needs (atomic
// batch publish, direct get, rollups for compaction), and does the same for the dead-letter stream
// shared by all namespaces.
//
// The max age of a timeseries namespace with a retention drops events
// older than that, measured from when they were stored, so replaying the
// stream never brings back expired events; the backend sweeps its own copy
// by event time. Updating a namespace to retention 0 removes the max age
// set before.
//
// With PublishChanges the stream republishes every stored event to core
// NATS at subjects.Changes(ns) (JetStream's RePublish: original headers and
// data plus Nats-Stream, Nats-Sequence and Nats-Subject); without it, a
// republish set before is removed.
//
// It returns an error for an invalid namespace or when JetStream refuses
// either stream (e.g. a change of storage, which needs a migration).
func ApplyStreams(ctx context.Context, js jetstream.JetStream, ns Namespace, p Plan) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	storage := jetstream.FileStorage
	if p.Storage.Value == "memory" {
		storage = jetstream.MemoryStorage
	}
	cfg := jetstream.StreamConfig{
		Name:               subjects.Stream(ns.Name),
		Description:        "Prism events of namespace " + ns.Name,
		Subjects:           subjects.StreamSubjects(ns.Name),
		Storage:            storage,
		Replicas:           max(p.Replicas.Value, 1),
		Retention:          jetstream.LimitsPolicy,
		Duplicates:         p.DuplicateWindow.Value,
		MaxMsgSize:         int32(p.MaxMsgSize.Value),
		MaxAge:             p.MaxAge.Value,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		// Compaction rolls a record's events up into one (ADR 012).
		AllowRollup: true,
	}
	if !ns.PII.IsZero() {
		cfg.Metadata = map[string]string{subjects.StreamMetaPII: "sealed"}
	}
	if ns.PublishChanges {
		// JetStream republishes each message once it is stored: the
		// fan-out costs no Prism code and sees exactly the stream's order.
		cfg.RePublish = &jetstream.RePublish{
			Source:      subjects.StreamSubjects(ns.Name)[0],
			Destination: subjects.Changes(ns.Name),
		}
	}
	info, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	if ci := info.CachedInfo().Cluster; ci != nil && ci.Leader == "" {
		if err := waitLeader(ctx, js, cfg.Name); err != nil {
			return err
		}
	}
	if err := ensureTokenBucket(ctx, js, ns, p, storage); err != nil {
		return err
	}
	if ns.Abstraction == AbstractionKeyValue {
		if err := ensureBlobStream(ctx, js, ns, p, storage); err != nil {
			return err
		}
	}
	// The dead letters of a replicated namespace are kept as safely as its
	// events.
	return ensureDeadLetters(ctx, js, max(p.Replicas.Value, 1))
}

// ensureDeadLetters creates the dead-letter stream shared by every
// namespace, or raises its replicas to replicas; it never lowers them, and
// leaves a stream with enough replicas as it is, so applying N namespaces
// costs one lookup each, not an update.
func ensureDeadLetters(ctx context.Context, js jetstream.JetStream, replicas int) error {
	cur, err := js.Stream(ctx, subjects.DeadLetterStream)
	switch {
	case err == nil && cur.CachedInfo().Config.Replicas >= replicas:
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("ensure stream %s: %w", subjects.DeadLetterStream, err)
	}
	dlq := jetstream.StreamConfig{
		Name:        subjects.DeadLetterStream,
		Description: "Prism dead letters of every namespace",
		Subjects:    subjects.DeadLetterSubjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		AllowDirect: true,
		Replicas:    replicas,
	}
	return createOrUpdate(ctx, js, dlq)
}

// createOrUpdate creates stream cfg or updates it in place, and waits for
// its leader when it has none yet.
func createOrUpdate(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	info, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	if ci := info.CachedInfo().Cluster; ci != nil && ci.Leader == "" {
		return waitLeader(ctx, js, cfg.Name)
	}
	return nil
}

// waitLeader waits until stream name has a leader. A stream whose replicas
// just changed (or that was just created in a cluster) has none for a
// moment, and a write then waits for its whole timeout.
func waitLeader(ctx context.Context, js jetstream.JetStream, name string) error {
	for {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if ci := s.CachedInfo().Cluster; ci == nil || ci.Leader != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s has no leader: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteStreams deletes the stream of namespace ns and with it every event
// and projector consumer, and its blob stream (ADR 025); the dead-letter stream is kept. A stream that
// does not exist is not an error.
func DeleteStreams(ctx context.Context, js jetstream.JetStream, ns string) error {
	err := js.DeleteStream(ctx, subjects.Stream(ns))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", subjects.Stream(ns), err)
	}
	if err := deleteTokenBucket(ctx, js, ns); err != nil {
		return err
	}
	return deleteBlobStream(ctx, js, ns)
}
