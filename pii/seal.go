package pii

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrDecrypt is returned when a ciphertext does not open: another key,
// another namespace, record or field than it was sealed for, or changed
// bytes. It never says which, nor carries any of the bytes.
var ErrDecrypt = errors.New("pii: cannot decrypt: wrong key, moved or changed ciphertext")

// ErrMalformed is returned for bytes that are not a sealed value.
var ErrMalformed = errors.New("pii: not a sealed value")

// version is the first byte of a sealed value.
const version = 1

// DataKey is a namespace's data key as it is stored: its id and the key
// wrapped by the KEK named KEKID. It holds no plaintext key.
type DataKey struct {
	ID      string `json:"id"`
	KEKID   string `json:"kek_id"`
	Wrapped []byte `json:"wrapped"`
}

// Sealer seals and opens field values under one data key. It is safe for
// concurrent use.
type Sealer struct {
	id   string
	aead cipher.AEAD
}

// NewDataKey makes a new random data key named id, wrapped by kek, and
// the Sealer that uses it.
func NewDataKey(id string, kek KEK) (DataKey, *Sealer, error) {
	if id == "" || len(id) > 255 {
		return DataKey{}, nil, fmt.Errorf("pii: data key id %q: want 1 to 255 bytes", id)
	}
	dek := make([]byte, 32)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return DataKey{}, nil, err
	}
	wrapped, err := kek.Wrap(dek)
	if err != nil {
		return DataKey{}, nil, fmt.Errorf("pii: wrap data key %s: %w", id, err)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return DataKey{}, nil, err
	}
	return DataKey{ID: id, KEKID: kek.ID(), Wrapped: wrapped}, &Sealer{id: id, aead: aead}, nil
}

// OpenDataKey unwraps dk with kek. Errors: kek is not the KEK dk names,
// or ErrDecrypt.
func OpenDataKey(dk DataKey, kek KEK) (*Sealer, error) {
	if dk.KEKID != kek.ID() {
		return nil, fmt.Errorf("pii: data key %s is wrapped by %s, not %s", dk.ID, dk.KEKID, kek.ID())
	}
	dek, err := kek.Unwrap(dk.Wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	return &Sealer{id: dk.ID, aead: aead}, nil
}

// KeyID is the id of the data key s seals with; every sealed value
// carries it.
func (s *Sealer) KeyID() string { return s.id }

// Seal encrypts value for field of record id in namespace ns. The three
// are the associated data: the result opens only for the same namespace,
// record and field. Layout: version, key id length, key id, nonce,
// AES-256-GCM ciphertext and tag.
func (s *Sealer) Seal(ns string, id []byte, field string, value []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, 0, 2+len(s.id)+n+len(value)+s.aead.Overhead())
	out = append(out, version, byte(len(s.id)))
	out = append(out, s.id...)
	nonceAt := len(out)
	out = out[:nonceAt+n]
	if _, err := rand.Read(out[nonceAt:]); err != nil {
		panic("pii: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return s.aead.Seal(out, out[nonceAt:], value, associated(ns, id, field))
}

// Open decrypts a value Seal returned for the same namespace, record and
// field. Errors: ErrMalformed, ErrDecrypt, or a value sealed under another
// data key (KeyIDOf names it).
func (s *Sealer) Open(ns string, id []byte, field string, sealed []byte) ([]byte, error) {
	kid, rest, err := split(sealed)
	if err != nil {
		return nil, err
	}
	if kid != s.id {
		return nil, fmt.Errorf("pii: sealed under data key %s, not %s", kid, s.id)
	}
	n := s.aead.NonceSize()
	if len(rest) < n+s.aead.Overhead() {
		return nil, ErrMalformed
	}
	v, err := s.aead.Open(nil, rest[:n], rest[n:], associated(ns, id, field))
	if err != nil {
		return nil, ErrDecrypt
	}
	return v, nil
}

// KeyIDOf returns the data key id a sealed value names, so that a reader
// picks the right Sealer after a rotation. Errors: ErrMalformed.
func KeyIDOf(sealed []byte) (string, error) {
	kid, _, err := split(sealed)
	return kid, err
}

func split(sealed []byte) (kid string, rest []byte, err error) {
	if len(sealed) < 2 || sealed[0] != version {
		return "", nil, ErrMalformed
	}
	l := int(sealed[1])
	if l == 0 || len(sealed) < 2+l {
		return "", nil, ErrMalformed
	}
	return string(sealed[2 : 2+l]), sealed[2+l:], nil
}

// associated is the associated data of a field value: each part length-
// prefixed, so that no two (ns, id, field) give the same bytes.
func associated(ns string, id []byte, field string) []byte {
	ad := make([]byte, 0, 12+len(ns)+len(id)+len(field))
	for _, p := range [][]byte{[]byte(ns), id, []byte(field)} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return ad
}
