package pii

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Blind indexes. A PII value that must be found by equality (a TimeSeries
// tag) is stored as a token, a keyed hash of the value, beside its sealed
// copy. The token's key is derived from the namespace's first data key
// (so tokens stay alike across rotations) and the record's secret (so
// that forgetting the record leaves its tokens unlinkable: nobody can
// compute the token of a guessed value any more, nor tell two forgotten
// records' equal values apart).

// TokenPrefix starts every token, so that a stored token is told apart
// from a value written before its field was PII.
const TokenPrefix = "pii1."

// TokenKey makes the tokens of one record's values.
type TokenKey struct {
	key []byte
}

// Tokens returns the token key of record id in namespace ns whose secret
// is rs.
func (s *Sealer) Tokens(ns string, id []byte, rs RecordSecret) (*TokenKey, error) {
	info := append([]byte("prism pii blind index\x00"), associated(ns, id, "")...)
	key, err := hkdf.Key(sha256.New, s.dek, rs.Secret[:], string(info), 32)
	if err != nil {
		return nil, err
	}
	return &TokenKey{key: key}, nil
}

// Token is the token of value in field: TokenPrefix and the base64url of
// HMAC-SHA256(field, value) under the record's token key. Equal values of
// one field of one record have equal tokens; anything else differs.
func (t *TokenKey) Token(field string, value []byte) string {
	m := hmac.New(sha256.New, t.key)
	m.Write(associated("", nil, field))
	m.Write(value)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// IsToken reports whether s has the shape of a token.
func IsToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	return ok && len(rest) == base64.RawURLEncoding.EncodedLen(sha256.Size)
}

// TokenKey returns the token key of record id in namespace ns. With
// create, a record without a secret gets one (a write); without, it is
// ErrForgotten (a search: nothing was ever sealed for it, or it was
// forgotten, so no stored token can match).
func (k *Keyring) TokenKey(ctx context.Context, ns string, id []byte, create bool) (*TokenKey, error) {
	s, err := k.RequestHasher(ctx, ns) // the first data key
	if err != nil {
		return nil, err
	}
	rs, err := k.secret(ctx, ns, id, create)
	if err != nil {
		return nil, err
	}
	return s.Tokens(ns, id, rs)
}
