package node

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns the logger a Prism process writes to w: level is
// debug, info, warn or error; format is text (logfmt-like) or json (one
// object per line). Errors name the flag a person sets (--log-level,
// --log-format).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
