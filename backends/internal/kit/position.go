package kit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// MaxEventIDLen is the longest event_id an event may have, in bytes.
const MaxEventIDLen = 256

// MaxSearchTags bounds the tags of one Search, so that its query stays far
// below the databases' limits on bound parameters.
const MaxSearchTags = 64

// Pos is a position in the order of TimeSeries events, (time, series_id,
// event_id). ReadRange and Search within one series leave Series nil: they
// order by (time, event_id).
type Pos struct {
	Sec, Nanos int64
	Series, ID []byte
}

// Compare returns -1, 0 or +1 as p is before, at or after q.
func (p Pos) Compare(q Pos) int {
	if c := cmp.Compare(p.Sec, q.Sec); c != 0 {
		return c
	}
	if c := cmp.Compare(p.Nanos, q.Nanos); c != 0 {
		return c
	}
	if c := bytes.Compare(p.Series, q.Series); c != 0 {
		return c
	}
	return bytes.Compare(p.ID, q.ID)
}

// Successor returns the least position after p: a byte string sorts before
// itself with a zero byte appended and after everything in between, so
// "> p" is ">= p.Successor()". It does not modify p's ID.
func (p Pos) Successor() Pos {
	p.ID = append(slices.Clip(p.ID), 0)
	return p
}

// RangeBounds returns the positions [lo, hi) of r: the position before
// every event at r.start (or before all time) and before every event at
// r.end (or after all time). Valid timestamps stay within years 1 to 9999,
// so the int64 extremes are outside every event time.
//
// Errors: a *RequestError for an invalid start or end.
func RangeBounds(r *prismv1.TimeRange) (lo, hi Pos, err error) {
	lo, hi = Pos{Sec: math.MinInt64}, Pos{Sec: math.MaxInt64}
	if t := r.GetStart(); t != nil {
		if err := t.CheckValid(); err != nil {
			return lo, hi, &RequestError{Detail: fmt.Sprintf("range start: %v", err)}
		}
		lo = Pos{Sec: t.GetSeconds(), Nanos: int64(t.GetNanos())}
	}
	if t := r.GetEnd(); t != nil {
		if err := t.CheckValid(); err != nil {
			return lo, hi, &RequestError{Detail: fmt.Sprintf("range end: %v", err)}
		}
		hi = Pos{Sec: t.GetSeconds(), Nanos: int64(t.GetNanos())}
	}
	return lo, hi, nil
}

// Narrow moves [lo, hi) past after, the last event of the previous page
// (nil on the first page). One bound per side keeps every query a single
// range scan of its index.
func Narrow(lo, hi Pos, after *Pos, descending bool) (Pos, Pos) {
	switch {
	case after == nil:
	case descending:
		if after.Compare(hi) < 0 {
			hi = *after
		}
	default:
		if next := after.Successor(); next.Compare(lo) > 0 {
			lo = next
		}
	}
	return lo, hi
}

// Kinds of event page tokens: a token of one read is refused by the other.
const (
	TokenRange  byte = 'r' // ReadRange
	TokenSearch byte = 's' // Search
)

// EncodeEventToken returns the page token of a TimeSeries read whose page
// ended at p: the base64url of the kind byte, p's seconds (8 bytes,
// big-endian) and nanoseconds (4 bytes), for TokenSearch its series_id
// (uvarint length, bytes), then its event_id.
func EncodeEventToken(kind byte, p Pos) string {
	b := make([]byte, 0, 1+8+4+binary.MaxVarintLen64+len(p.Series)+len(p.ID))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Sec))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Nanos))
	if kind == TokenSearch {
		b = binary.AppendUvarint(b, uint64(len(p.Series)))
		b = append(b, p.Series...)
	}
	b = append(b, p.ID...)
	return tokenEncoding.EncodeToString(b)
}

// DecodeEventToken reverses EncodeEventToken for a token of kind; it
// returns nil for "" (the first page).
//
// Errors: a *RequestError (Token) for a token EncodeEventToken cannot have
// made for kind: another kind, an invalid time, an empty series (TokenSearch),
// an event_id empty or longer than MaxEventIDLen.
func DecodeEventToken(kind byte, token string) (*Pos, error) {
	if token == "" {
		return nil, nil
	}
	bad := badToken(token)
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+4 || b[0] != kind {
		return nil, bad
	}
	p := &Pos{
		Sec:   int64(binary.BigEndian.Uint64(b[1:])),
		Nanos: int64(binary.BigEndian.Uint32(b[9:])),
	}
	if (&timestamppb.Timestamp{Seconds: p.Sec, Nanos: int32(p.Nanos)}).CheckValid() != nil {
		return nil, bad
	}
	b = b[13:]
	if kind == TokenSearch {
		n, w := binary.Uvarint(b)
		if w <= 0 || n == 0 || n > uint64(len(b)-w) {
			return nil, bad
		}
		p.Series = b[w : w+int(n)]
		b = b[w+int(n):]
	}
	if len(b) == 0 || len(b) > MaxEventIDLen {
		return nil, bad
	}
	p.ID = b
	return p, nil
}

// EventPage cuts events, read with one row more than the page size to tell
// whether a next page exists, to size and returns the token of the next
// page of kind: "" if events fit, the last page.
func EventPage(kind byte, events []*prismv1.SeriesEvent, size int) ([]*prismv1.SeriesEvent, string) {
	if len(events) <= size {
		return events, ""
	}
	events = events[:size]
	last := events[size-1]
	t := last.GetEvent().GetEventTime()
	return events, EncodeEventToken(kind, Pos{
		Sec: t.GetSeconds(), Nanos: int64(t.GetNanos()),
		Series: last.GetSeriesId(), ID: last.GetEvent().GetEventId(),
	})
}
