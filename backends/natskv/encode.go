package natskv

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// A token is one part of a KV key (between dots). NATS KV keys allow only
// [-/_=.a-zA-Z0-9], and '.' separates tokens, so ids and item keys, which
// are any bytes, are encoded:
//
//   - a non-empty value made only of [A-Za-z0-9_-] is its own token, so
//     usual ids stay readable in `nats kv ls`;
//   - anything else (the empty value included) is '=' followed by its
//     unpadded base64url encoding (4/3 of its length, so a 1 KiB binary id
//     stays far below the 4 KiB control line a publish must fit in).
//
// '=' is outside both alphabets but allowed in KV keys, so the two forms
// cannot be confused, and DecodeToken accepts only what EncodeToken
// produces: every value has exactly one token (the encoding is canonical).

// tokenEncoding is strict: non-zero padding bits are refused, so a value has
// one base64 form.
var tokenEncoding = base64.RawURLEncoding.Strict()

// errInvalidToken is returned by DecodeToken for a token EncodeToken cannot
// produce.
var errInvalidToken = errors.New("invalid key token")

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func allPlain(b []byte) bool {
	for _, c := range b {
		if !isPlain(c) {
			return false
		}
	}
	return true
}

// EncodeToken returns the KV key token of an id or item key: b itself if it
// is non-empty and made of [A-Za-z0-9_-], or else '=' and its base64url.
func EncodeToken(b []byte) string {
	if len(b) > 0 && allPlain(b) {
		return string(b)
	}
	out := make([]byte, 1+tokenEncoding.EncodedLen(len(b)))
	out[0] = '='
	tokenEncoding.Encode(out[1:], b)
	return string(out)
}

// DecodeToken reverses EncodeToken. It returns an error for a token that is
// not the canonical encoding of some value.
func DecodeToken(token string) ([]byte, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty", errInvalidToken)
	}
	if token[0] != '=' {
		if !allPlain([]byte(token)) {
			return nil, fmt.Errorf("%w %q: unexpected character", errInvalidToken, token)
		}
		return []byte(token), nil
	}
	// The base64url alphabet is the plain one; checking it also refuses the
	// '\r' and '\n' the decoder would skip.
	if !allPlain([]byte(token[1:])) {
		return nil, fmt.Errorf("%w %q: unexpected character", errInvalidToken, token)
	}
	b, err := tokenEncoding.DecodeString(token[1:])
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", errInvalidToken, token, err)
	}
	if len(b) > 0 && allPlain(b) {
		return nil, fmt.Errorf("%w %q: a plain value must not be encoded", errInvalidToken, token)
	}
	return b, nil
}

// Key prefixes; each is one token, so the three kinds of entries cannot
// collide.
const (
	itemPrefix     = "i."
	recordPrefix   = "r."
	checkpointKey  = "m.checkpoint"
	recordWildcard = recordPrefix + ">"
)

func itemKey(encID string, key []byte) string { return itemPrefix + encID + "." + EncodeToken(key) }
func recordKey(encID string) string           { return recordPrefix + encID }

// expiry is an item's expire_time; set is false for an item that never
// expires.
type expiry struct {
	set   bool
	sec   int64
	nanos int32
}

func expiryOf(ts *timestamppb.Timestamp) expiry {
	if ts == nil {
		return expiry{}
	}
	return expiry{set: true, sec: ts.GetSeconds(), nanos: ts.GetNanos()}
}

// live reports whether an item with this expiry is visible at now
// (expire_time <= now is expired).
func (e expiry) live(nowSec int64, nowNanos int32) bool {
	if !e.set {
		return true
	}
	return e.sec > nowSec || e.sec == nowSec && e.nanos > nowNanos
}

func (e expiry) timestamp() *timestamppb.Timestamp {
	if !e.set {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: e.sec, Nanos: e.nanos}
}

// indexEntry is one key of a record's index.
type indexEntry struct {
	key []byte
	exp expiry
}

// record is a decoded record entry: the revision and the keys of the
// record's items sorted by bytes.
type record struct {
	revision uint64
	keys     []indexEntry
}

const recordVersion = 1

// encodeRecord writes a record entry: version, uvarint revision, uvarint
// count, then per key (in byte order) uvarint length, bytes, a flag byte (1
// if it expires) and, if set, varint seconds and uvarint nanoseconds.
func encodeRecord(rev uint64, keys map[string]expiry) []byte {
	sorted := make([]string, 0, len(keys))
	size := 1 + 2*binary.MaxVarintLen64
	for k := range keys {
		sorted = append(sorted, k)
		size += len(k) + 3 + 2*binary.MaxVarintLen64
	}
	slices.Sort(sorted) // Go strings compare bytewise
	out := make([]byte, 0, size)
	out = append(out, recordVersion)
	out = binary.AppendUvarint(out, rev)
	out = binary.AppendUvarint(out, uint64(len(sorted)))
	for _, k := range sorted {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		e := keys[k]
		if !e.set {
			out = append(out, 0)
			continue
		}
		out = append(out, 1)
		out = binary.AppendVarint(out, e.sec)
		out = binary.AppendUvarint(out, uint64(e.nanos))
	}
	return out
}

// decodeRecord reverses encodeRecord.
func decodeRecord(b []byte) (*record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: record entry version", ErrCorrupt)
	}
	b = b[1:]
	rev, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: record revision", ErrCorrupt)
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: record key count", ErrCorrupt)
	}
	b = b[n:]
	r := &record{revision: rev, keys: make([]indexEntry, 0, count)}
	for range count {
		l, n := binary.Uvarint(b)
		if n <= 0 || l >= uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: record key", ErrCorrupt)
		}
		b = b[n:]
		e := indexEntry{key: b[:l:l]}
		b = b[l:]
		flag := b[0]
		b = b[1:]
		switch flag {
		case 0:
		case 1:
			sec, n := binary.Varint(b)
			if n <= 0 {
				return nil, fmt.Errorf("%w: record expiry", ErrCorrupt)
			}
			b = b[n:]
			nanos, n := binary.Uvarint(b)
			if n <= 0 || nanos >= 1e9 {
				return nil, fmt.Errorf("%w: record expiry", ErrCorrupt)
			}
			b = b[n:]
			e.exp = expiry{set: true, sec: sec, nanos: int32(nanos)}
		default:
			return nil, fmt.Errorf("%w: record expiry flag", ErrCorrupt)
		}
		if len(r.keys) > 0 && bytes.Compare(r.keys[len(r.keys)-1].key, e.key) >= 0 {
			return nil, fmt.Errorf("%w: record keys out of order", ErrCorrupt)
		}
		r.keys = append(r.keys, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: record trailing bytes", ErrCorrupt)
	}
	return r, nil
}

// keyMap returns the index as a map for changes.
func (r *record) keyMap() map[string]expiry {
	m := make(map[string]expiry, len(r.keys))
	for _, e := range r.keys {
		m[string(e.key)] = e.exp
	}
	return m
}

// liveKeys returns the keys that are visible at now, in byte order.
func (r *record) liveKeys(nowSec int64, nowNanos int32) []indexEntry {
	out := make([]indexEntry, 0, len(r.keys))
	for _, e := range r.keys {
		if e.exp.live(nowSec, nowNanos) {
			out = append(out, e)
		}
	}
	return out
}

// The item envelope is a flag byte (0: no expiry, 1: expiry), for 1 the
// expire_time as 8 bytes of seconds and 4 of nanoseconds (big endian), then
// the value. The expiry is in the record's index too; keeping it with the
// value makes every item entry self-describing for other KV readers.
func encodeItem(exp expiry, value []byte) []byte {
	if !exp.set {
		out := make([]byte, 1+len(value))
		copy(out[1:], value)
		return out
	}
	out := make([]byte, 13+len(value))
	out[0] = 1
	binary.BigEndian.PutUint64(out[1:], uint64(exp.sec))
	binary.BigEndian.PutUint32(out[9:], uint32(exp.nanos))
	copy(out[13:], value)
	return out
}

func decodeItem(b []byte) (expiry, []byte, error) {
	switch {
	case len(b) >= 1 && b[0] == 0:
		return expiry{}, b[1:], nil
	case len(b) >= 13 && b[0] == 1:
		return expiry{set: true, sec: int64(binary.BigEndian.Uint64(b[1:])), nanos: int32(binary.BigEndian.Uint32(b[9:]))}, b[13:], nil
	}
	return expiry{}, nil, fmt.Errorf("%w: item envelope", ErrCorrupt)
}
