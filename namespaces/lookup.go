package namespaces

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// ErrNoRegistry is returned by Lookup when the NATS server holds no Prism
// namespace registry: the caller is most likely pointed at another
// deployment's NATS.
var ErrNoRegistry = errors.New("this NATS has no Prism namespace registry (is --nats-url the deployment's?)")

// Lookup reads namespace name from the registry of the deployment js
// reaches, without creating the registry when there is none (as
// OpenRegistry would): tools that run beside a deployment (prism replay)
// use it. Its Namespace carries the resolved backend. It returns an error
// wrapping ErrNoRegistry when there is no registry, and
// status.ErrNamespaceNotFound when name is not registered.
func Lookup(ctx context.Context, js jetstream.JetStream, name string) (Registered, error) {
	if _, err := js.KeyValue(ctx, subjects.RegistryBucket); errors.Is(err, jetstream.ErrBucketNotFound) {
		return Registered{}, fmt.Errorf("namespace %s: %w", name, ErrNoRegistry)
	} else if err != nil {
		return Registered{}, fmt.Errorf("read the namespace registry: %w", err)
	}
	reg, _, err := OpenRegistry(ctx, js, 1)
	if err != nil {
		return Registered{}, err
	}
	e, err := reg.Get(ctx, name)
	if err != nil {
		return Registered{}, err
	}
	e.Namespace.Backend = e.Backend
	return e, nil
}
