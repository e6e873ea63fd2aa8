package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// RequestVerify asks the node that projects namespace ns to verify its
// migration (OpVerify) through client, recorded as by, bounded by
// timeout, and returns its reply. A refusal is its *status.Error; an
// UNAVAILABLE one says that the projecting node may not be reachable.
func RequestVerify(ctx context.Context, client *namespaces.AdminClient, ns, by string, timeout time.Duration) (VerifyReply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var reply VerifyReply
	req := VerifyRequest{By: by, TimeoutMS: timeout.Milliseconds()}
	err := client.Request(ctx, subjects.Owner(ns, OpVerify), "migrate.verify", req, &reply)
	if e := (*status.Error)(nil); errors.As(err, &e) && e.Code == status.ErrUnavailable.Code {
		return reply, fmt.Errorf("%w (verify runs in the Prism that projects %s; is it running and reachable?)", err, ns)
	}
	return reply, err
}

// WriteText writes the verify report of namespace ns as a table, then
// the migration's state and the next command.
func (r VerifyReply) WriteText(w io.Writer, ns string) error {
	if err := r.Report.WriteTable(w); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nmigration of %s is %s; next: %s\n", ns, r.State, namespaces.MigrationAdvice(r.State, r.Report.Passed(), ns))
	return err
}
