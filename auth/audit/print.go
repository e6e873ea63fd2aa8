package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// Printer writes records as prism audit prints them: for people, the
// String of each under a line naming the columns; or, as JSON, each
// record as stored, one a line.
type Printer struct {
	w            *bufio.Writer
	asJSON, sync bool
}

// NewPrinter returns a printer to w, which writes the column line at once
// unless asJSON. sync writes each record through as it is printed (for
// following); otherwise Flush does.
func NewPrinter(w io.Writer, asJSON, sync bool) *Printer {
	p := &Printer{w: bufio.NewWriter(w), asJSON: asJSON, sync: sync}
	if !asJSON {
		fmt.Fprintf(p.w, "%-27s  %-16s %-16s %-18s %5s  %-19s %s\n", "TIME", "PRINCIPAL", "NAMESPACE", "OP", "COUNT", "CODE", "LATENCY")
	}
	if sync {
		p.w.Flush()
	}
	return p
}

// Print writes rec; its signature is List's and Follow's callback.
func (p *Printer) Print(rec Record) error {
	if p.asJSON {
		data, err := rec.MarshalJSON()
		if err != nil {
			return err
		}
		p.w.Write(data)
		p.w.WriteByte('\n')
	} else {
		fmt.Fprintln(p.w, rec.String())
	}
	if p.sync {
		return p.w.Flush()
	}
	return nil
}

// Flush writes out what Print buffered.
func (p *Printer) Flush() error { return p.w.Flush() }

// Print lists (or with follow, follows) the records f selects to w as
// prism audit prints them (NewPrinter), until ctx ends, which ends a
// follow without an error. Errors: List's and Follow's.
func Print(ctx context.Context, js jetstream.JetStream, f Filter, w io.Writer, asJSON, follow bool) error {
	p := NewPrinter(w, asJSON, follow)
	defer p.Flush()
	if !follow {
		return List(ctx, js, f, p.Print)
	}
	if err := Follow(ctx, js, f, p.Print); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
