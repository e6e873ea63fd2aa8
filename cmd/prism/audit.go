package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/auth"
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
		Long: `audit lists the audit records of a deployment (stream PRISM_AUDIT): one
per data access, with who, namespace, operation, count, hashed ids,
outcome and latency; docs/security.md describes them. By default the last
24 hours; --since/--until take a duration back from now (1h), an RFC 3339
time, or all; -f keeps printing new records. --json prints each record as
stored, one per line. It needs JetStream in Prism's account: connect with
a PRISM service credential (--nkey service.nk).`,
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
	now := time.Now()
	filter := audit.Filter{Namespace: f.namespace, Principal: f.principal, Op: f.op, Limit: f.limit}
	var err error
	if f.follow && !cmd.Flags().Changed("since") {
		f.since = ""
	}
	if filter.Since, err = audit.ParseTime(f.since, now); err != nil {
		return fmt.Errorf("--since %w", err)
	}
	if f.until == "all" {
		return errors.New("--until all: all is for --since; leave --until out to list up to now")
	}
	if filter.Until, err = audit.ParseTime(f.until, now); err != nil {
		return fmt.Errorf("--until %w", err)
	}

	f.conn.Name = "prism-audit"
	nc, err := f.conn.Connect(cmd.Context())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	if !f.asJSON {
		fmt.Fprintf(out, "%-27s  %-16s %-16s %-18s %5s  %-19s %s\n", "TIME", "PRINCIPAL", "NAMESPACE", "OP", "COUNT", "CODE", "LATENCY")
	}
	emit := func(rec audit.Record) error {
		if f.asJSON {
			data, err := rec.MarshalJSON()
			if err != nil {
				return err
			}
			out.Write(data)
			out.WriteByte('\n')
		} else {
			fmt.Fprintln(out, rec.String())
		}
		if f.follow {
			return out.Flush()
		}
		return nil
	}
	if f.follow {
		out.Flush()
		err = audit.Follow(ctx, js, filter, emit)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return audit.List(ctx, js, filter, emit)
}

// auditRun appends the audit record of a replay or compaction this
// command ran on namespace ns (n records) as the Prism service user it
// connected as; a record that cannot be stored is reported on stderr.
func auditRun(ctx context.Context, js jetstream.JetStream, op, ns string, n uint64, err error, d time.Duration) {
	p := auth.ServicePrincipal
	if u, uerr := user.Current(); uerr == nil {
		p.Name = "prism/" + u.Username
	}
	rec := audit.Record{Principal: p, Namespace: ns, Op: op, Count: int(n), Code: audit.Code(err), Latency: d}
	if werr := audit.RecordOnce(ctx, js, rec); werr != nil {
		fmt.Fprintf(os.Stderr, "prism: the audit record of %s on %s was not stored: %v\n", op, ns, werr)
	}
}
