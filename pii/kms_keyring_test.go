package pii_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/pii"
)

// TestKeyringOverKMS: the keyring seals, rotates and rewraps with a KMS
// KEK as with a key file, both ways.
func TestKeyringOverKMS(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	s, _, kmsKEK := newKMS(t)
	fileKEK := newKEK(t)

	// Written under the file KEK, then moved to KMS.
	a := openKeyring(t, js, pii.KeyringConfig{KEK: fileKEK})
	v1 := seal(t, a, "users", "u1", "email", "ada@example.com")
	toKMS := openKeyring(t, js, pii.KeyringConfig{KEK: kmsKEK, Previous: []pii.KEK{fileKEK}})
	if n, err := toKMS.Rewrap(ctx); err != nil || n != 1 {
		t.Fatalf("Rewrap to KMS = %d, %v", n, err)
	}
	onlyKMS := openKeyring(t, js, pii.KeyringConfig{KEK: kmsKEK})
	if got, err := open(onlyKMS, "users", "u1", "email", v1); err != nil || got != "ada@example.com" {
		t.Fatalf("after the rewrap to KMS: %q, %v", got, err)
	}
	if id, err := onlyKMS.Rotate(ctx, "users"); err != nil || id != "k2" {
		t.Fatalf("Rotate = %s, %v", id, err)
	}
	v2 := seal(t, onlyKMS, "users", "u2", "email", "bob@example.com")
	dks, err := onlyKMS.DataKeys(ctx, "users")
	if err != nil || len(dks) != 2 || dks[0].KEKID != kmsKEK.ID() || dks[1].KEKID != kmsKEK.ID() {
		t.Fatalf("data keys %+v, %v; want both wrapped by %s", dks, err, kmsKEK.ID())
	}
	// A fresh process (no cache) opens both through KMS.
	fresh := openKeyring(t, js, pii.KeyringConfig{KEK: kmsKEK})
	for _, c := range []struct {
		id, want string
		sealed   []byte
	}{{"u1", "ada@example.com", v1}, {"u2", "bob@example.com", v2}} {
		if got, err := open(fresh, "users", c.id, "email", c.sealed); err != nil || got != c.want {
			t.Fatalf("fresh keyring over KMS, %s: %q, %v", c.id, got, err)
		}
	}
	// And back to a file KEK.
	back := openKeyring(t, js, pii.KeyringConfig{KEK: fileKEK, Previous: []pii.KEK{kmsKEK}})
	if n, err := back.Rewrap(ctx); err != nil || n != 2 {
		t.Fatalf("Rewrap back to the file = %d, %v", n, err)
	}
	onlyFile := openKeyring(t, js, pii.KeyringConfig{KEK: fileKEK})
	if got, err := open(onlyFile, "users", "u2", "email", v2); err != nil || got != "bob@example.com" {
		t.Fatalf("after the rewrap back: %q, %v", got, err)
	}
	if len(s.Calls()) == 0 {
		t.Fatal("no call reached the stand-in")
	}
}

// wrapOnly is a KEK that wraps but cannot unwrap (a KMS key without
// kms:Decrypt, say).
type wrapOnly struct{ pii.KEK }

func (wrapOnly) Unwrap([]byte) ([]byte, error) { return nil, pii.ErrKEKRefused }

// TestRewrapKeepsKeysAKEKCannotUnwrap: a rewrap to a KEK that cannot
// unwrap what it wrapped fails and leaves every data key as it was.
func TestRewrapKeepsKeysAKEKCannotUnwrap(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	oldKEK := newKEK(t)
	a := openKeyring(t, js, pii.KeyringConfig{KEK: oldKEK})
	v := seal(t, a, "users", "u1", "email", "ada@example.com")
	before, err := a.DataKeys(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}

	broken := wrapOnly{newKEK(t)}
	r := openKeyring(t, js, pii.KeyringConfig{KEK: broken, Previous: []pii.KEK{oldKEK}})
	n, err := r.Rewrap(ctx)
	if n != 0 || !errors.Is(err, pii.ErrKEKRefused) {
		t.Fatalf("Rewrap = %d, %v; want 0 and the unwrap's error", n, err)
	}
	if _, err := pii.Rewrap(before[0].DataKey, oldKEK, broken); err == nil {
		t.Fatal("pii.Rewrap accepted a KEK that cannot unwrap")
	}
	after, err := a.DataKeys(ctx, "users")
	if err != nil || len(after) != 1 || after[0].KEKID != oldKEK.ID() || string(after[0].Wrapped) != string(before[0].Wrapped) {
		t.Fatalf("data keys after the failed rewrap: %+v, %v; want them unchanged", after, err)
	}
	fresh := openKeyring(t, js, pii.KeyringConfig{KEK: oldKEK})
	if got, err := open(fresh, "users", "u1", "email", v); err != nil || got != "ada@example.com" {
		t.Fatalf("the value after the failed rewrap: %q, %v", got, err)
	}
}
