package audit

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// RecordOnce stores rec with a writer of its own and returns once it is
// stored: for a command that does one audited thing (prism replay, prism
// compact). It is bounded by 10 s even when ctx is cancelled, so that an
// interrupted command still records what it did without hanging on an
// unreachable stream. Errors: the audit stream does not exist (nothing
// serves this deployment's audit yet), or the record was not stored.
func RecordOnce(ctx context.Context, js jetstream.JetStream, rec Record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, subjects.AuditStream); err != nil {
		return streamError("find the audit stream "+subjects.AuditStream, err)
	}
	w, err := NewWriter(js, WithAckTimeout(5*time.Second))
	if err != nil {
		return err
	}
	err = w.Record(ctx, rec, true)
	return errors.Join(err, w.Close(ctx))
}
