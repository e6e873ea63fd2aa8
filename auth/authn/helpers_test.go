package authn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/status"
)

// newChain builds the chain of cfg with clock now, failing the test on
// error.
func newChain(t *testing.T, cfg authn.Config, now time.Time) auth.Authenticator {
	t.Helper()
	a, err := authn.New(context.Background(), cfg, authn.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// want is the expected outcome of one authentication.
type want struct {
	err    error // a sentinel of authn; nil for success
	name   string
	groups []string
	via    string
	exp    time.Time
}

// check authenticates req and compares the outcome with w. A refusal must
// be a PERMISSION_DENIED *status.Error wrapping w.err whose text holds
// none of secrets.
func check(t *testing.T, a auth.Authenticator, req *jwt.AuthorizationRequestClaims, w want, secrets ...string) {
	t.Helper()
	p, exp, err := a.Authenticate(context.Background(), req)
	if w.err != nil {
		if err == nil {
			t.Fatalf("Authenticate = %+v, want refusal %v", p, w.err)
		}
		if !errors.Is(err, w.err) {
			t.Fatalf("Authenticate error = %v, want %v", err, w.err)
		}
		if !errors.Is(err, status.ErrPermissionDenied) {
			t.Fatalf("Authenticate error = %v, want code PERMISSION_DENIED", err)
		}
		if p.Name != "" || p.Via != "" || !exp.IsZero() {
			t.Fatalf("refusal came with principal %+v exp %v", p, exp)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Fatalf("refusal %q contains a secret of the client", err)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if p.Name != w.name || p.Via != w.via || strings.Join(p.Groups, ",") != strings.Join(w.groups, ",") {
		t.Fatalf("principal = %+v, want name %q groups %q via %q", p, w.name, w.groups, w.via)
	}
	if !exp.Equal(w.exp) {
		t.Fatalf("expiry = %v, want %v", exp, w.exp)
	}
}
