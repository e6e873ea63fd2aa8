package natsconn

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnectGuarded connects as Connect does and returns, with the
// connection, a context derived from ctx that ends with a *RefusedError
// (naming hint as what is needed) as its cause once the server refuses to
// let the connection publish: a request that gets no reply for that
// reason ends at once, not at its timeout (see Refused). done ends the
// context and closes the connection.
func (o Options) ConnectGuarded(ctx context.Context, hint string, extra ...nats.Option) (nc *nats.Conn, guarded context.Context, done func(), err error) {
	guarded, refuse := context.WithCancelCause(ctx)
	nc, err = o.Connect(guarded, append(extra, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			refuse(&RefusedError{Options: o, Err: err, Hint: hint})
		}
	}))...)
	if err != nil {
		refuse(nil)
		return nil, nil, nil, err
	}
	return nc, guarded, func() { refuse(nil); nc.Close() }, nil
}

// Refused is err, or the *RefusedError that ended guarded (a context of
// ConnectGuarded) when err is not nil: the reason a request failed.
func Refused(guarded context.Context, err error) error {
	if refused := (*RefusedError)(nil); err != nil && errors.As(context.Cause(guarded), &refused) {
		return refused
	}
	return err
}

// ConnectJetStream connects as Connect does and returns JetStream over
// the connection, for the commands that read streams directly (replay,
// compact, audit); the caller closes the connection.
func (o Options) ConnectJetStream(ctx context.Context, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := o.Connect(ctx, extra...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
