package audit

import (
	"errors"
	"fmt"
	"time"
)

// ParseTime parses a --since or --until value of prism audit: "" (none),
// "all" (the Unix epoch, before any record: not none, which would make
// Follow start with new records), a duration back from now, or an RFC 3339
// time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "all":
		return time.Unix(0, 0), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration back from now like 1h or 30m, a time like 2025-06-01T12:00:00Z, or all", s)
	}
	return t, nil
}

// SetWindow sets f's Since and Until from prism audit's --since and
// --until values (ParseTime), at now; until may not be all. Its errors
// name the flag at fault.
func (f *Filter) SetWindow(since, until string, now time.Time) (err error) {
	if f.Since, err = ParseTime(since, now); err != nil {
		return fmt.Errorf("--since %w", err)
	}
	if until == "all" {
		return errors.New("--until all: all is for --since; leave --until out to list up to now")
	}
	if f.Until, err = ParseTime(until, now); err != nil {
		return fmt.Errorf("--until %w", err)
	}
	return nil
}
