package natsconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/subjects"
)

// A request the server does not let the credential publish gets no
// reply; the guarded context ends at once, and Refused names the
// principal and the hint instead of the request's cancellation.
func TestConnectGuardedEndsARefusedRequest(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	s := startServer(t, op.serverOptions(t))
	alice := op.creds(t, dir, "alice", nil, func(p *jwt.Permissions) {
		p.Pub.Allow.Add("svc")
		p.Sub.Allow.Add(subjects.InboxPrefix("alice") + ".>")
	})
	// The bound only keeps a broken guard from hanging the test.
	bound, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, ctx, done, err := Options{URL: s.ClientURL(), Creds: alice}.ConnectGuarded(bound, "other needs its own permission")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if err := Refused(ctx, errors.New("before")); err.Error() != "before" {
		t.Fatalf("Refused before any refusal = %v, want the error as it is", err)
	}
	_, err = nc.RequestWithContext(ctx, "other", nil)
	err = Refused(ctx, err)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Hint != "other needs its own permission" || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("refused request: %v, want a *RefusedError with the hint", err)
	}
	if err := Refused(ctx, nil); err != nil {
		t.Fatalf("Refused(nil) = %v, want nil", err)
	}
}

// A failed connect returns the connect's error and no context.
func TestConnectGuardedConnectError(t *testing.T) {
	_, ctx, done, err := Options{URL: "nats://127.0.0.1:1"}.ConnectGuarded(context.Background(), "")
	var ce *ConnectError
	if !errors.As(err, &ce) || ctx != nil || done != nil {
		t.Fatalf("ConnectGuarded to nothing = %v, %v, done %v; want a *ConnectError", err, ctx, done != nil)
	}
}
