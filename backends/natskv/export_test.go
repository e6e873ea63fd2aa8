package natskv

// SetBeforeCommit sets a function the store runs before publishing each
// atomic batch, so tests can interleave two writers deterministically.
func (s *Store) SetBeforeCommit(f func()) { s.beforeCommit = f }

// MaxBatchMsgs is the size limit of one atomic batch.
const MaxBatchMsgs = maxBatchMsgs
