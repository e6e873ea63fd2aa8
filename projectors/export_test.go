package projectors

// SetResolvedBatchBytes sets the bound of large-value bytes per apply of a
// target made by ResolveChunks.
func SetResolvedBatchBytes(t KeyValueTarget, n uint64) { t.(*chunkResolver).maxBytes = n }
