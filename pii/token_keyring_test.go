package pii_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/pii"
)

// A series' tokens stay alike across rotations and processes (a search
// finds events written under an older data key), and are gone with its
// secret.
func TestKeyringTokensSurviveRotationNotForget(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	kek := newKEK(t)
	a := openKeyring(t, js, pii.KeyringConfig{KEK: kek})
	b := openKeyring(t, js, pii.KeyringConfig{KEK: kek}) // another process

	if _, err := b.TokenKey(ctx, "visits", []byte("s1"), false); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("TokenKey of a series that never sealed a value: %v, want ErrForgotten", err)
	}
	tk, err := a.TokenKey(ctx, "visits", []byte("s1"), true)
	if err != nil {
		t.Fatal(err)
	}
	email := []byte("ada@example.com")
	before := tk.Token("email", email)
	if _, err := a.Rotate(ctx, "visits"); err != nil {
		t.Fatal(err)
	}
	if h, _ := pii.Inspect(seal(t, a, "visits", "s1", "email", "x")); h.KeyID != "k2" {
		t.Fatalf("after rotation sealed under %s, want k2", h.KeyID)
	}
	for name, k := range map[string]*pii.Keyring{"writer": a, "another process": b} {
		tk, err := k.TokenKey(ctx, "visits", []byte("s1"), false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := tk.Token("email", email); got != before {
			t.Fatalf("%s after rotation: token %q, stored %q", name, got, before)
		}
	}
	if _, err := a.Forget(ctx, "visits", []byte("s1"), "user:dpo"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TokenKey(ctx, "visits", []byte("s1"), false); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("TokenKey after Forget: %v, want ErrForgotten", err)
	}
	// Written again, the series gets a new secret: the old tokens are
	// not computed again.
	tk, err = a.TokenKey(ctx, "visits", []byte("s1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Token("email", email) == before {
		t.Fatal("after Forget the same token is computed again: the forgotten series stays linkable")
	}
}
