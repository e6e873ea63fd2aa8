package audit

import (
	"context"
	"errors"
	"os/user"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/auth"
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

// RecordRun stores the record of a replay or compaction (op) a command
// ran on namespace ns, n records, as the Prism service user of the
// operating system's user ("prism/<user>"), with RecordOnce.
func RecordRun(ctx context.Context, js jetstream.JetStream, op, ns string, n uint64, err error, d time.Duration) error {
	p := auth.ServicePrincipal
	if u, uerr := user.Current(); uerr == nil {
		p.Name = "prism/" + u.Username
	}
	return RecordOnce(ctx, js, Record{Principal: p, Namespace: ns, Op: op, Count: int(n), Code: Code(err), Latency: d})
}
