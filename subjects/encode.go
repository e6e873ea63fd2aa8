package subjects

import (
	"errors"
	"fmt"
)

// The id encoding keeps ASCII letters, digits, '-' and '_' as they are, so
// ids stay readable in `nats stream view`, and writes every other byte as
// '~' followed by two upper-case hex digits. The output never contains '.',
// '*', '>', whitespace or control characters, and every id has exactly one
// encoding: DecodeID rejects anything EncodeID cannot produce, so
// encode(decode(s)) == s and decode(encode(b)) == b.
//
// The empty id encodes to "~" (a token must not be empty).

const hexDigits = "0123456789ABCDEF"

// ErrInvalidEncoding is returned by DecodeID for a token EncodeID cannot
// produce.
var ErrInvalidEncoding = errors.New("invalid encoded id")

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// EncodedLen is the length of EncodeID(id).
func EncodedLen(id []byte) int {
	if len(id) == 0 {
		return 1
	}
	n := 0
	for _, c := range id {
		if isPlain(c) {
			n++
		} else {
			n += 3
		}
	}
	return n
}

// EncodeID returns the subject-safe token of a record id.
func EncodeID(id []byte) string {
	if len(id) == 0 {
		return "~"
	}
	out := make([]byte, 0, EncodedLen(id))
	for _, c := range id {
		if isPlain(c) {
			out = append(out, c)
			continue
		}
		out = append(out, '~', hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return string(out)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// DecodeID reverses EncodeID. It returns ErrInvalidEncoding for a token that
// is not the canonical encoding of some id.
func DecodeID(token string) ([]byte, error) {
	if token == "~" {
		return []byte{}, nil
	}
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrInvalidEncoding)
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		if isPlain(c) {
			out = append(out, c)
			continue
		}
		if c != '~' || i+2 >= len(token) {
			return nil, fmt.Errorf("%w: unexpected byte %q at %d", ErrInvalidEncoding, c, i)
		}
		hi, ok1 := unhex(token[i+1])
		lo, ok2 := unhex(token[i+2])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: bad escape at %d", ErrInvalidEncoding, i)
		}
		b := hi<<4 | lo
		if isPlain(b) {
			return nil, fmt.Errorf("%w: %q must not be escaped", ErrInvalidEncoding, b)
		}
		out = append(out, b)
		i += 2
	}
	return out, nil
}
