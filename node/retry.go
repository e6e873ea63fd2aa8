package node

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// setupAttempt bounds one try of a start-up step against JetStream. On a
// cluster that is electing a meta leader (a node just restarted), a
// request can go unanswered; waiting for it until the start-up deadline
// fails the start, where a retry a few seconds later is answered by the
// new leader.
const setupAttempt = 5 * time.Second

// retrySetup runs step with attempts bounded by setupAttempt until it
// succeeds, fails for another reason than its attempt running out of time
// (or no JetStream answering yet), or ctx ends; it returns the last
// result.
func retrySetup[T any](ctx context.Context, step func(ctx context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, setupAttempt)
		v, err := step(actx)
		timedOut := actx.Err() != nil
		cancel()
		if err == nil || ctx.Err() != nil || !(timedOut || errors.Is(err, nats.ErrNoResponders)) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
