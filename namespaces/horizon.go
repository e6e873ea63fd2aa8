package namespaces

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// Retry horizons (ADR 025): JetStream remembers an idempotency token for
// its DuplicateWindow only; a namespace whose RetryHorizon is longer keeps
// the tokens of its single-event writes in a NATS KV bucket
// whose TTL is the horizon, so a retry within it is stored once.
const (
	// DefaultRetryHorizon is the retry horizon of a namespace that states
	// none: JetStream's duplicate window alone. A longer horizon costs a
	// token lookup per write and a KV entry per token for the horizon
	// (write_rps × horizon of them), which a namespace declares.
	DefaultRetryHorizon = DuplicateWindow
	// MaxRetryHorizon is the longest retry horizon.
	MaxRetryHorizon = 30 * 24 * time.Hour
)

// RetryHorizon is how long a write's idempotency token is remembered:
// Needs.RetryHorizon, DefaultRetryHorizon when unset, and never less than
// DuplicateWindow.
func (n Namespace) RetryHorizon() time.Duration {
	h := time.Duration(n.Needs.RetryHorizon)
	if h == 0 {
		h = DefaultRetryHorizon
	}
	return max(h, DuplicateWindow)
}

// ensureTokenBucket creates the token bucket of ns when its retry horizon
// is longer than the duplicate window, or updates its TTL in place.
func ensureTokenBucket(ctx context.Context, js jetstream.JetStream, ns Namespace, p Plan, storage jetstream.StorageType) error {
	if ns.RetryHorizon() <= DuplicateWindow {
		return deleteTokenBucket(ctx, js, ns.Name)
	}
	_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      subjects.TokenBucket(ns.Name),
		Description: "Prism idempotency tokens of namespace " + ns.Name,
		TTL:         ns.RetryHorizon(),
		Storage:     storage,
		Replicas:    max(p.Replicas.Value, 1),
	})
	if err != nil {
		return fmt.Errorf("ensure token bucket %s: %w", subjects.TokenBucket(ns.Name), err)
	}
	return nil
}

func deleteTokenBucket(ctx context.Context, js jetstream.JetStream, ns string) error {
	err := js.DeleteKeyValue(ctx, subjects.TokenBucket(ns))
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete token bucket %s: %w", subjects.TokenBucket(ns), err)
	}
	return nil
}
