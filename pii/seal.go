package pii

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
const version = 2

// DataKey is a namespace's data key as it is stored: its id and the key
// wrapped by the KEK named KEKID. It holds no plaintext key.
type DataKey struct {
	ID      string `json:"id"`
	KEKID   string `json:"kek_id"`
	Wrapped []byte `json:"wrapped"`
}

// Sealer holds one unwrapped data key. Values are never sealed under the
// data key itself but under a record key derived from it and the record's
// secret (Record), so that forgetting the secret makes them unreadable. It
// is safe for concurrent use.
type Sealer struct {
	id  string
	dek []byte
	mac []byte // the request-hash key, derived from dek
}

// NewDataKey makes a new random data key named id, wrapped by kek, and
// the Sealer that uses it.
func NewDataKey(id string, kek KEK) (DataKey, *Sealer, error) {
	if id == "" || len(id) > 255 {
		return DataKey{}, nil, fmt.Errorf("pii: data key id %q: want 1 to 255 bytes", id)
	}
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return DataKey{}, nil, err
	}
	wrapped, err := kek.Wrap(dek)
	if err != nil {
		clear(dek)
		return DataKey{}, nil, fmt.Errorf("pii: wrap data key %s: %w", id, err)
	}
	s, err := newSealer(id, dek)
	if err != nil {
		return DataKey{}, nil, err
	}
	return DataKey{ID: id, KEKID: kek.ID(), Wrapped: wrapped}, s, nil
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
	return newSealer(dk.ID, dek)
}

func newSealer(id string, dek []byte) (*Sealer, error) {
	if len(dek) != 32 {
		clear(dek)
		return nil, ErrBadKey
	}
	mac, err := hkdf.Key(sha256.New, dek, nil, "prism pii request hash", 32)
	if err != nil {
		return nil, err
	}
	return &Sealer{id: id, dek: dek, mac: mac}, nil
}

// KeyID is the id of the data key s holds; every sealed value carries it.
func (s *Sealer) KeyID() string { return s.id }

// String names the key without its material.
func (s *Sealer) String() string { return "pii.Sealer(" + s.id + ")" }

// GoString is String, so that %#v prints no key either.
func (s *Sealer) GoString() string { return s.String() }

// HashRequest returns the keyed hash (HMAC-SHA256) of a request's bytes:
// what is stored to recognise a retried write, and which, unlike a plain
// hash, nobody without the data key can test a guessed value against.
func (s *Sealer) HashRequest(b []byte) []byte {
	m := hmac.New(sha256.New, s.mac)
	m.Write(b)
	return m.Sum(nil)
}

// SecretIDLen is the length of a RecordSecret's id.
const SecretIDLen = 8

// RecordSecret is the per-record secret record keys are derived from. ID
// names it in every value sealed under it, so that a value sealed under a
// forgotten secret is told apart from a changed one.
type RecordSecret struct {
	ID     [SecretIDLen]byte
	Secret [32]byte
}

// NewRecordSecret makes a random record secret.
func NewRecordSecret() RecordSecret {
	var rs RecordSecret
	if _, err := rand.Read(rs.ID[:]); err != nil {
		panic("pii: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	if _, err := rand.Read(rs.Secret[:]); err != nil {
		panic("pii: no randomness: " + err.Error())
	}
	return rs
}

// MarshalBinary is the stored form: the id, then the secret.
func (rs RecordSecret) MarshalBinary() ([]byte, error) {
	return append(rs.ID[:len(rs.ID):len(rs.ID)], rs.Secret[:]...), nil
}

// UnmarshalBinary reads what MarshalBinary wrote. Errors: ErrMalformed.
func (rs *RecordSecret) UnmarshalBinary(b []byte) error {
	if len(b) != SecretIDLen+32 {
		return ErrMalformed
	}
	copy(rs.ID[:], b)
	copy(rs.Secret[:], b[SecretIDLen:])
	return nil
}

// RecordKey seals and opens the PII values of one record: AES-256-GCM
// under a key derived (HKDF-SHA256) from the data key and the record's
// secret, with the namespace, record and field as associated data. It is
// safe for concurrent use.
type RecordKey struct {
	keyID    string
	secretID [SecretIDLen]byte
	ns       string
	id       []byte
	aead     cipher.AEAD
}

// Record returns the key of record id in namespace ns whose secret is rs.
func (s *Sealer) Record(ns string, id []byte, rs RecordSecret) (*RecordKey, error) {
	info := append([]byte("prism pii record key\x00"), associated(ns, id, "")...)
	key, err := hkdf.Key(sha256.New, s.dek, rs.Secret[:], string(info), 32)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &RecordKey{keyID: s.id, secretID: rs.ID, ns: ns, id: id, aead: aead}, nil
}

// Seal encrypts value for field of the record. The result opens only for
// the same namespace, record and field, under the same data key and
// record secret. Layout: version, data key id length, data key id, record
// secret id, nonce, AES-256-GCM ciphertext and tag.
func (k *RecordKey) Seal(field string, value []byte) []byte {
	n := k.aead.NonceSize()
	out := make([]byte, 0, 2+len(k.keyID)+SecretIDLen+n+len(value)+k.aead.Overhead())
	out = append(out, version, byte(len(k.keyID)))
	out = append(out, k.keyID...)
	out = append(out, k.secretID[:]...)
	nonceAt := len(out)
	out = out[:nonceAt+n]
	if _, err := rand.Read(out[nonceAt:]); err != nil {
		panic("pii: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return k.aead.Seal(out, out[nonceAt:], value, associated(k.ns, k.id, field))
}

// Open decrypts a value Seal returned for the same field. Errors:
// ErrMalformed, ErrDecrypt, or a value sealed under another data key or
// record secret (Inspect names them).
func (k *RecordKey) Open(field string, sealed []byte) ([]byte, error) {
	h, rest, err := split(sealed)
	if err != nil {
		return nil, err
	}
	if h.KeyID != k.keyID {
		return nil, fmt.Errorf("pii: sealed under data key %s, not %s", h.KeyID, k.keyID)
	}
	if h.SecretID != k.secretID {
		return nil, fmt.Errorf("pii: %w", ErrOtherSecret)
	}
	n := k.aead.NonceSize()
	if len(rest) < n+k.aead.Overhead() {
		return nil, ErrMalformed
	}
	v, err := k.aead.Open(nil, rest[:n], rest[n:], associated(k.ns, k.id, field))
	if err != nil {
		return nil, ErrDecrypt
	}
	return v, nil
}

// ErrOtherSecret is returned by Open for a value sealed under another
// secret of the record than the key's: one that was forgotten.
var ErrOtherSecret = errors.New("sealed under another record secret")

// Header is what a sealed value says about itself: the data key and the
// record secret it was sealed under. Neither is secret.
type Header struct {
	KeyID    string
	SecretID [SecretIDLen]byte
}

// Inspect returns the header of a sealed value, so that a reader picks
// the right data key and record secret. Errors: ErrMalformed.
func Inspect(sealed []byte) (Header, error) {
	h, _, err := split(sealed)
	return h, err
}

func split(sealed []byte) (Header, []byte, error) {
	if len(sealed) < 2 || sealed[0] != version {
		return Header{}, nil, ErrMalformed
	}
	l := int(sealed[1])
	if l == 0 || len(sealed) < 2+l+SecretIDLen {
		return Header{}, nil, ErrMalformed
	}
	h := Header{KeyID: string(sealed[2 : 2+l])}
	copy(h.SecretID[:], sealed[2+l:])
	return h, sealed[2+l+SecretIDLen:], nil
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
