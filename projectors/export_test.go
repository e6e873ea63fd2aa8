package projectors

// SetResolvedBatchBytes sets the bound of large-value bytes per apply of a
// target made by ResolveChunks.
func SetResolvedBatchBytes(t KeyValueTarget, n uint64) { t.(*chunkResolver).maxBytes = n }

// WithClaimHook makes the projector call fn when it has found an existing
// consumer free, before it claims it, so that a test can hold two
// projectors there together.
func WithClaimHook(fn func()) Option {
	return func(o *options) error {
		o.claimHook = fn
		return nil
	}
}
