package kit

import "time"

// NonNil returns b, or an empty slice for nil: database drivers (pgx,
// database/sql) bind a nil slice as NULL, and protobuf readers may tell a
// nil field from an empty one, but ids, keys and values are never NULL (an
// empty one is valid).
func NonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SplitTime returns t as Unix seconds and the nanoseconds within the
// second, the form expire and event times are stored and compared in.
func SplitTime(t time.Time) (sec int64, nanos int32) {
	return t.Unix(), int32(t.Nanosecond())
}
