package replay

// WithHook makes Compact call fn before each rollup (stage "rollup") and
// each tombstone purge (stage "purge") with the record subject, so a test
// can write to the record in between.
func WithHook(fn func(stage, subject string)) CompactOption {
	return func(o *compactOptions) error {
		o.hook = fn
		return nil
	}
}

// WithPaceHook makes a paced pass call fn with the messages each of its
// waits asks for.
func WithPaceHook(fn func(n int)) CompactOption {
	return func(o *compactOptions) error {
		o.paceHook = fn
		return nil
	}
}

// CompactorRate is the rate c paces its passes at.
func CompactorRate(c *Compactor) float64 { return c.opts.rate }
