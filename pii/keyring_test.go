package pii_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/subjects"
)

func openKeyring(t *testing.T, js jetstream.JetStream, cfg pii.KeyringConfig) *pii.Keyring {
	t.Helper()
	k, err := pii.OpenKeyring(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

// seal seals value for field of record id through k.
func seal(t *testing.T, k *pii.Keyring, ns, id, field, value string) []byte {
	t.Helper()
	rk, err := k.SealKey(context.Background(), ns, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	return rk.Seal(field, []byte(value))
}

// open opens sealed, a value of field of record id, through k.
func open(k *pii.Keyring, ns, id, field string, sealed []byte) (string, error) {
	h, err := pii.Inspect(sealed)
	if err != nil {
		return "", err
	}
	rk, err := k.OpenKey(context.Background(), ns, []byte(id), h)
	if err != nil {
		return "", err
	}
	v, err := rk.Open(field, sealed)
	return string(v), err
}

func TestKeyringSealsAcrossProcessesAndRotations(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	kek := newKEK(t)
	a := openKeyring(t, js, pii.KeyringConfig{KEK: kek})
	b := openKeyring(t, js, pii.KeyringConfig{KEK: kek}) // another process

	v1 := seal(t, a, "users", "u1", "email", "ada@example.com")
	if got, err := open(b, "users", "u1", "email", v1); err != nil || got != "ada@example.com" {
		t.Fatalf("another keyring opened %q, %v", got, err)
	}
	// The bucket holds no plaintext key and no value.
	kv, err := js.KeyValue(ctx, subjects.PIIKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("bucket keys %v, %v; want a data key and a record secret", keys, err)
	}

	id, err := a.Rotate(ctx, "users")
	if err != nil || id != "k2" {
		t.Fatalf("Rotate = %q, %v", id, err)
	}
	v2 := seal(t, a, "users", "u1", "email", "ada@new.example.com")
	if h, _ := pii.Inspect(v2); h.KeyID != "k2" {
		t.Fatalf("after rotation sealed under %s", h.KeyID)
	}
	for _, v := range [][]byte{v1, v2} {
		if _, err := open(b, "users", "u1", "email", v); err != nil {
			t.Fatalf("a value under %v does not open after rotation: %v", v[:4], err)
		}
	}
	dks, err := a.DataKeys(ctx, "users")
	if err != nil || len(dks) != 2 || dks[0].Serial != 1 || dks[1].Serial != 2 {
		t.Fatalf("DataKeys = %+v, %v", dks, err)
	}
	// The request hash stays the first key's.
	h1, err := a.RequestHasher(ctx, "users")
	if err != nil || h1.KeyID() != "k1" {
		t.Fatalf("RequestHasher = %v, %v", h1, err)
	}
}

func TestKeyringForgetShredsEveryCopy(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv))
	kek := newKEK(t)
	a := openKeyring(t, js, pii.KeyringConfig{KEK: kek})
	b := openKeyring(t, js, pii.KeyringConfig{KEK: kek})
	v := seal(t, a, "users", "u1", "email", "ada@example.com")
	other := seal(t, a, "users", "u2", "email", "bob@example.com")
	if _, err := open(b, "users", "u1", "email", v); err != nil { // b caches the secret
		t.Fatal(err)
	}
	secret := storedSecret(t, js, "users", "u1")
	// Control: the store holds it before (once JetStream flushed its block).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := fileHolding(t, srv.JetStreamConfig().StoreDir, secret); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record secret never reached the store: the scan below could not fail")
		}
	}
	had, err := a.Forget(ctx, "users", []byte("u1"), "user:dpo")
	if err != nil || !had {
		t.Fatalf("Forget = %v, %v", had, err)
	}
	// The secret's bytes are overwritten in the store, not only marked.
	if path, ok := fileHolding(t, srv.JetStreamConfig().StoreDir, secret); ok {
		t.Fatalf("the forgotten secret's bytes are still in %s", path)
	}
	if _, err := open(a, "users", "u1", "email", v); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("the forgetting keyring opened it: %v", err)
	}
	// b drops its cached secret on the notice.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := open(b, "users", "u1", "email", v)
		if errors.Is(err, pii.ErrForgotten) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another keyring still opens a forgotten value: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A fresh process cannot either, and the secret's bytes are gone from
	// the bucket's stream.
	c := openKeyring(t, js, pii.KeyringConfig{KEK: kek})
	if _, err := open(c, "users", "u1", "email", v); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("a new keyring opened a forgotten value: %v", err)
	}
	if got, err := open(c, "users", "u2", "email", other); err != nil || got != "bob@example.com" {
		t.Fatalf("another record: %q, %v", got, err)
	}
	// Writing the record again makes a new secret: new values open, the old
	// one stays forgotten.
	nv := seal(t, a, "users", "u1", "email", "ada@again.example.com")
	if got, err := open(c, "users", "u1", "email", nv); err != nil || got != "ada@again.example.com" {
		t.Fatalf("a value written after the forget: %q, %v", got, err)
	}
	if _, err := open(c, "users", "u1", "email", v); !errors.Is(err, pii.ErrForgotten) {
		t.Fatalf("the forgotten value opened under the new secret: %v", err)
	}
	if had, err := a.Forget(ctx, "users", []byte("nobody"), "user:dpo"); err != nil || had {
		t.Fatalf("Forget of a record without PII = %v, %v", had, err)
	}
}

func TestKeyringRewrap(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Start(t)
	oldKEK, newKEKey := newKEK(t), newKEK(t)
	a := openKeyring(t, js, pii.KeyringConfig{KEK: oldKEK})
	v := seal(t, a, "users", "u1", "email", "ada@example.com")

	// A process with only the new KEK cannot read until the rewrap.
	fresh := openKeyring(t, js, pii.KeyringConfig{KEK: newKEKey})
	if _, err := open(fresh, "users", "u1", "email", v); err == nil {
		t.Fatal("a KEK that never wrapped the data key opened it")
	}
	r := openKeyring(t, js, pii.KeyringConfig{KEK: newKEKey, Previous: []pii.KEK{oldKEK}})
	n, err := r.Rewrap(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Rewrap = %d, %v", n, err)
	}
	if n, err := r.Rewrap(ctx); err != nil || n != 0 {
		t.Fatalf("second Rewrap = %d, %v; want nothing to do", n, err)
	}
	after := openKeyring(t, js, pii.KeyringConfig{KEK: newKEKey})
	if got, err := open(after, "users", "u1", "email", v); err != nil || got != "ada@example.com" {
		t.Fatalf("after the rewrap: %q, %v", got, err)
	}
	dks, _ := after.DataKeys(ctx, "users")
	if len(dks) != 1 || dks[0].KEKID != newKEKey.ID() || bytes.Contains(dks[0].Wrapped, []byte("ada")) {
		t.Fatalf("data keys after rewrap: %+v", dks)
	}
}

// storedSecret returns the bytes the key bucket holds for record id.
func storedSecret(t *testing.T, js jetstream.JetStream, ns, id string) []byte {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), subjects.PIIKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "rs."+ns+"."+base64.RawURLEncoding.EncodeToString([]byte(id)))
	if err != nil {
		t.Fatal(err)
	}
	return e.Value()
}

// fileHolding returns the first file under dir whose bytes contain b.
func fileHolding(t *testing.T, dir string, b []byte) (string, bool) {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, found != ""
}
