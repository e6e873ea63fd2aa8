package pii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The keyring's administration: rotation, rewrapping, forgetting.

// Rotate adds a new data key to namespace ns: this process seals new
// values with it at once, others within KeyTTL. Values sealed before
// stay readable under the key they name. It returns the new key's id.
func (k *Keyring) Rotate(ctx context.Context, ns string) (string, error) {
	serial, _, err := k.newest(ctx, ns)
	if err != nil {
		return "", err
	}
	for {
		serial++
		key := dataKeyKey(ns, serial)
		dk, s, err := NewDataKey(keyID(serial), k.kek)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(StoredKey{DataKey: dk, Serial: serial, Created: time.Now().UTC()})
		if err != nil {
			return "", err
		}
		if _, err := k.kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
			continue // a concurrent rotation took this serial
		} else if err != nil {
			return "", fmt.Errorf("pii: store data key %s: %w", key, err)
		}
		k.mu.Lock()
		nk := k.nsKeys(ns)
		nk.byID[dk.ID] = s
		nk.current, nk.serial, nk.checkedAt = s, serial, time.Now()
		k.mu.Unlock()
		k.log.Info("pii: data key rotated", "namespace", ns, "key", dk.ID, "kek", dk.KEKID)
		return dk.ID, nil
	}
}

// Rewrap wraps every data key of every namespace that is not wrapped by
// the keyring's KEK under it, unwrapping with the previous KEKs; the keys
// themselves, and so every sealed value, stay as they are. It returns how
// many keys it rewrapped. A key changed by another process meanwhile is
// left for the next run (the error says so).
func (k *Keyring) Rewrap(ctx context.Context) (int, error) {
	lister, err := k.kv.ListKeysFiltered(ctx, "dk.>")
	if err != nil {
		return 0, fmt.Errorf("pii: list data keys: %w", err)
	}
	n := 0
	for key := range lister.Keys() {
		e, err := k.kv.Get(ctx, key)
		if err != nil {
			return n, fmt.Errorf("pii: read data key %s: %w", key, err)
		}
		var sk StoredKey
		if err := json.Unmarshal(e.Value(), &sk); err != nil {
			return n, fmt.Errorf("pii: data key %s is not readable: %w", key, err)
		}
		if sk.KEKID == k.kek.ID() {
			continue
		}
		from, ok := k.keks[sk.KEKID]
		if !ok {
			return n, fmt.Errorf("pii: data key %s is wrapped by KEK %s, which this process does not hold; pass it as a previous KEK", key, sk.KEKID)
		}
		if sk.DataKey, err = Rewrap(sk.DataKey, from, k.kek); err != nil {
			return n, fmt.Errorf("pii: rewrap %s: %w", key, err)
		}
		b, err := json.Marshal(sk)
		if err != nil {
			return n, err
		}
		if _, err := k.kv.Update(ctx, key, b, e.Revision()); err != nil {
			return n, fmt.Errorf("pii: store rewrapped %s (changed meanwhile? run again): %w", key, err)
		}
		n++
	}
	return n, nil
}

// Rewrap wraps the data key dk, wrapped by from, under to; the key itself
// is unchanged. It unwraps the result with to and compares before
// returning it, so a KEK that cannot unwrap what it wrapped fails here
// and the stored key stays as it was.
func Rewrap(dk DataKey, from, to KEK) (DataKey, error) {
	if dk.KEKID != from.ID() {
		return DataKey{}, fmt.Errorf("pii: data key %s is wrapped by %s, not %s", dk.ID, dk.KEKID, from.ID())
	}
	dek, err := from.Unwrap(dk.Wrapped)
	if err != nil {
		return DataKey{}, err
	}
	defer clear(dek)
	wrapped, err := to.Wrap(dek)
	if err != nil {
		return DataKey{}, fmt.Errorf("pii: wrap data key %s: %w", dk.ID, err)
	}
	// Prove the new wrapping opens before it replaces the old one: a KEK
	// that wraps but cannot unwrap (a KMS key without kms:Decrypt) would
	// otherwise destroy the key, and every value sealed under it.
	back, err := to.Unwrap(wrapped)
	if err != nil {
		return DataKey{}, fmt.Errorf("pii: data key %s rewrapped by %s does not unwrap again; left as it was: %w", dk.ID, to.ID(), err)
	}
	defer clear(back)
	if !bytes.Equal(back, dek) {
		return DataKey{}, fmt.Errorf("pii: data key %s rewrapped by %s unwraps to another key; left as it was: %w", dk.ID, to.ID(), ErrDecrypt)
	}
	return DataKey{ID: dk.ID, KEKID: to.ID(), Wrapped: wrapped}, nil
}

// Forgotten is the notice Forget leaves: who forgot the record, when.
type Forgotten struct {
	At time.Time `json:"at"`
	By string    `json:"by"`
}

// Forget deletes the secret of record id in namespace ns, erasing its
// bytes from the bucket's store, so that every value sealed under it, in
// the stream, every backend and every copy, can never be opened again;
// by names who asked. Other processes drop their cached copy on the
// notice it leaves (at the latest within KeyTTL). It reports whether the
// record had a secret.
func (k *Keyring) Forget(ctx context.Context, ns string, id []byte, by string) (bool, error) {
	key := recordKey("rs.", ns, id)
	e, err := k.kv.Get(ctx, key)
	had := err == nil
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, fmt.Errorf("pii: read record secret: %w", err)
	default:
		stream, err := k.js.Stream(ctx, keyStream)
		if err != nil {
			return false, fmt.Errorf("pii: key bucket stream: %w", err)
		}
		// Overwrite the stored bytes, not only mark them deleted.
		if err := stream.SecureDeleteMsg(ctx, e.Revision()); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("pii: erase record secret: %w", err)
		}
		if err := k.kv.Delete(ctx, key); err != nil {
			return false, fmt.Errorf("pii: delete record secret: %w", err)
		}
	}
	k.evict(ns, id)
	b, err := json.Marshal(Forgotten{At: time.Now().UTC(), By: by})
	if err != nil {
		return had, err
	}
	if _, err := k.kv.Put(ctx, recordKey("fg.", ns, id), b); err != nil {
		return had, fmt.Errorf("pii: record the forget notice: %w", err)
	}
	return had, nil
}
