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
