package kit

import (
	"errors"
	"fmt"
	"time"
)

// ApplyOptions applies opts to o in order and returns the first error, for a
// backend's Open.
func ApplyOptions[O any, F ~func(*O) error](o *O, opts []F) error {
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// CheckClock returns the error of a WithClock option given now: nil unless
// now is nil.
func CheckClock(now func() time.Time) error {
	if now == nil {
		return errors.New("WithClock: nil clock")
	}
	return nil
}

// Integer is the type of a numeric option.
type Integer interface{ ~int | ~int32 | ~int64 }

// CheckRange returns the error of an option named option given n: nil when
// lo <= n <= hi, else "<option>: <n> <unit>, need <lo> to <hi>".
func CheckRange[N Integer](option string, n, lo, hi N, unit string) error {
	if n >= lo && n <= hi {
		return nil
	}
	return fmt.Errorf("%s: %d%s, need %d to %d", option, n, spaced(unit), lo, hi)
}

// CheckAtLeast returns the error of an option named option given n: nil when
// n >= lo, else "<option>: <n> <unit>, need at least <lo>".
func CheckAtLeast[N Integer](option string, n, lo N, unit string) error {
	if n >= lo {
		return nil
	}
	return fmt.Errorf("%s: %d%s, need at least %d", option, n, spaced(unit), lo)
}

func spaced(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}
