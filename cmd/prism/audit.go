package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/internal/natsconn"
)

// auditFlags are the flags of prism audit.
type auditFlags struct {
	conn      natsconn.Options
	namespace string
	principal string
	op        string
	since     string
	until     string
	follow    bool
	asJSON    bool
	limit     int
}

// defaultAuditSince is how far back prism audit lists without --since.
const defaultAuditSince = "24h"

func newAuditCmd() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List and follow the audit trail of data access",
		Long: `audit lists the audit records of a deployment (stream PRISM_AUDIT), by
default of the last 24 hours; -f keeps printing new ones, --json prints
each as stored. It needs a PRISM service credential (--nkey service.nk).
The records and the --since/--until forms: docs/security.md.`,
		Example: `  prism audit
  prism audit --namespace orders --op write --since 1h
  prism audit --principal alice@example.com --since 2025-06-01T00:00:00Z --until 2025-06-02T00:00:00Z
  prism audit -f --json | jq 'select(.code != "OK")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd, f)
		},
	}
	fl := cmd.Flags()
	f.conn.Register(fl, "NATS URL of the deployment, in the PRISM account")
	fl.StringVar(&f.namespace, "namespace", "", "only this namespace's records (_ for operations on no namespace)")
	fl.StringVar(&f.principal, "principal", "", "only this principal's records")
	fl.StringVar(&f.op, "op", "", "only this operation, or the operations under it (write, read.get, admin.ns)")
	fl.StringVar(&f.since, "since", defaultAuditSince, "from this time: a duration back from now (1h) or RFC 3339; all for every record kept")
	fl.StringVar(&f.until, "until", "", "up to this time: a duration back from now or RFC 3339")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new records until interrupted")
	fl.BoolVar(&f.asJSON, "json", false, "print each record as one line of JSON")
	fl.IntVar(&f.limit, "limit", 0, "stop after this many records (0: no limit)")
	return cmd
}

func runAudit(cmd *cobra.Command, f auditFlags) error {
	filter := audit.Filter{Namespace: f.namespace, Principal: f.principal, Op: f.op, Limit: f.limit}
	if f.follow && !cmd.Flags().Changed("since") {
		f.since = ""
	}
	if err := filter.SetWindow(f.since, f.until, time.Now()); err != nil {
		return err
	}
	f.conn.Name = "prism-audit"
	nc, js, err := f.conn.ConnectJetStream(cmd.Context())
	if err != nil {
		return err
	}
	defer nc.Close()

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	return audit.Print(ctx, js, filter, cmd.OutOrStdout(), f.asJSON, f.follow)
}

// auditRun records a replay or compaction this command ran (see
// audit.RecordRun); a record that cannot be stored is reported on stderr.
func auditRun(ctx context.Context, js jetstream.JetStream, op, ns string, n uint64, err error, d time.Duration) {
	if werr := audit.RecordRun(ctx, js, op, ns, n, err, d); werr != nil {
		fmt.Fprintf(os.Stderr, "prism: the audit record of %s on %s was not stored: %v\n", op, ns, werr)
	}
}
