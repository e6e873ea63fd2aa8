package kit

import (
	"context"
	"fmt"
)

// Do is the frame of one operation, named op, of a store whose gate is g:
// invalid (the backend's error for what the request check found; nil when
// nothing) is returned first, then closed if g is closed, then f runs inside
// g. Every error it returns is wrapped as "op: err".
func Do[T any](g *Gate, closed error, op string, invalid error, f func() (T, error)) (T, error) {
	return run(g, closed, op, op, invalid, f)
}

// Apply is the frame of an Apply method for batches of kind ("key-value",
// "time-series") reaching through: invalid (the backend's error for what
// the batch check found; nil when nothing) is returned first, then closed if
// g is closed, then apply runs inside g. Its errors read "apply <kind>
// batch: err", and apply's own "apply <kind> batch through seq <through>:
// err".
func Apply(g *Gate, closed error, kind string, through uint64, invalid error, apply func() error) error {
	op := "apply " + kind + " batch"
	_, err := run(g, closed, op, fmt.Sprintf("%s through seq %d", op, through), invalid, func() (struct{}, error) {
		return struct{}{}, apply()
	})
	return err
}

// run is Do with f's errors wrapped in fOp instead of op.
func run[T any](g *Gate, closed error, op, fOp string, invalid error, f func() (T, error)) (T, error) {
	var zero T
	if invalid != nil {
		return zero, fmt.Errorf("%s: %w", op, invalid)
	}
	if err := g.Enter(closed); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	defer g.Leave()
	v, err := f()
	if err != nil {
		return zero, fmt.Errorf("%s: %w", fOp, err)
	}
	return v, nil
}

// SweepChunks deletes in chunks: it calls chunk, which deletes at most size
// rows in a transaction of its own and returns how many it deleted, until
// one deletes fewer than size, chunk fails or ctx ends between two chunks.
// It returns the rows of the chunks that succeeded, also with the error.
func SweepChunks(ctx context.Context, size int64, chunk func() (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := chunk()
		if err != nil {
			return total, err
		}
		total += n
		if n < size {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
