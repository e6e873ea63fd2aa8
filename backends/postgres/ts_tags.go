package postgres

import (
	"encoding/binary"
	"errors"
	"slices"
)

// encodeTags returns the tags column of an event: for each tag, in key
// order, the uvarint length and bytes of its key, then of its value; nil
// for no tags. Key order makes equal tags encode equally. A hand-rolled
// encoding: decoding proto's map field cost half of a 1k-event range read.
func encodeTags(tags map[string]string) []byte {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	size := 0
	for k, v := range tags {
		keys = append(keys, k)
		size += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		v := tags[k]
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

var errBadTags = errors.New("malformed tags column")

// decodeTags reverses encodeTags; it returns nil for no tags.
func decodeTags(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	tags := make(map[string]string, 2)
	for len(b) > 0 {
		k, rest, ok := cutString(b)
		if !ok {
			return nil, errBadTags
		}
		v, rest, ok := cutString(rest)
		if !ok {
			return nil, errBadTags
		}
		tags[k] = v
		b = rest
	}
	return tags, nil
}

// cutString reads one uvarint-length-prefixed string off b.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}
