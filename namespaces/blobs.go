package namespaces

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// MaxChunkedValueBytes is the default largest value of a KeyValue item
// uploaded in parts (ADR 025): 64 MiB.
const MaxChunkedValueBytes = 64 << 20

// UploadHorizon is how long an upload may take from its first part to the
// put that names it; the gateway refuses a later put, and the parts of an
// upload no put named are collected after it (replay.CollectBlobs).
const UploadHorizon = time.Hour

// ensureBlobStream creates the blob stream of KeyValue namespace ns, or
// updates it in place, with the replicas and storage of its event stream
// (ADR 025). Its messages are value parts; the duplicate window makes a
// retried part stored once.
func ensureBlobStream(ctx context.Context, js jetstream.JetStream, ns Namespace, p Plan, storage jetstream.StorageType) error {
	cfg := jetstream.StreamConfig{
		Name:        subjects.BlobStream(ns.Name),
		Description: "Prism large-value parts of namespace " + ns.Name,
		Subjects:    subjects.BlobStreamSubjects(ns.Name),
		Storage:     storage,
		Replicas:    max(p.Replicas.Value, 1),
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  p.DuplicateWindow.Value,
		MaxMsgSize:  int32(p.MaxMsgSize.Value),
		AllowDirect: true,
	}
	return createOrUpdate(ctx, js, cfg)
}

// deleteBlobStream deletes the blob stream of ns; one that does not exist
// is not an error.
func deleteBlobStream(ctx context.Context, js jetstream.JetStream, ns string) error {
	err := js.DeleteStream(ctx, subjects.BlobStream(ns))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", subjects.BlobStream(ns), err)
	}
	return nil
}
