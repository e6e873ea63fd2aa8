package projectors

import (
	"errors"

	"github.com/prism-data/prism/subjects"
)

// ErrAlreadyStarted is returned by Start on a Projector that was started
// before. A Projector runs once; create a new one to run again.
var ErrAlreadyStarted = errors.New("projector already started")

// ErrStopTimeout is returned by Stop when its context ends before the
// projector finished its in-flight batch. The projector is then aborted: the
// messages it held are not acknowledged and will be delivered again to the
// next projector of the same (namespace, target).
var ErrStopTimeout = errors.New("projector did not stop in time")

// ErrMissingStream is returned by Start when the namespace's stream or the
// dead-letter stream does not exist. The gateway creates both when a
// namespace is applied.
var ErrMissingStream = errors.New("stream does not exist")

// ErrCheckpointAhead is returned by Start when the target's checkpoint is
// beyond the last sequence of the namespace's stream: the stream was deleted
// and recreated, or the target belongs to another stream. Projecting would
// skip every event up to the checkpoint, so the projector refuses.
var ErrCheckpointAhead = errors.New("target checkpoint ahead of the stream")

// ErrConsumerInUse is returned by Start when another owner (WithOwner) is
// consuming the same durable consumer right now: another Prism process
// projects this namespace into this target. Two projectors on one consumer
// would each receive part of the events and reposition each other; the
// second refuses instead. It may start as soon as the first has stopped:
// a clean Stop frees the consumer at once; only a projector that crashed
// leaves pull requests behind, which expire within seconds.
var ErrConsumerInUse = errors.New("consumer in use by another projector")

// PermanentError is implemented by target errors that say whether retrying
// can ever help. An ApplyKeyValue or ApplyTimeSeries error e for which
// errors.As(e, &pe) && pe.Permanent() holds is blamed on the change, not on
// the backend: the projector isolates the failing change and dead-letters it
// instead of retrying.
type PermanentError interface {
	error
	Permanent() bool
}

// isPermanent reports whether err is blamed on the data rather than on the
// target.
func isPermanent(err error) bool {
	if errors.Is(err, subjects.ErrBadEvent) {
		return true
	}
	var pe PermanentError
	return errors.As(err, &pe) && pe.Permanent()
}
