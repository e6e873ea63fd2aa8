package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/prism-data/prism/auth/audit"
)

// auditFlags are the flags of prism audit.
type auditFlags struct {
	natsURL   string
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
		Long: `audit lists the audit records of a Prism deployment: one per data access
(each read, write, mutate, subscribe, admin action, replay and migration
step), with who did it, on which namespace, the operation, how many records
and their ids hashed (never keys or values), the outcome code and the
latency. They are kept in the JetStream stream PRISM_AUDIT for the
configured retention (90 days by default).

By default it lists the records of the last 24 hours and exits; --follow
(-f) then keeps printing new ones until interrupted (with -f and no
--since, only new ones). --since and --until take a duration back from
now (1h, 30m) or a time (2025-06-01T12:00:00Z); --since all lists from the
first record kept. --namespace takes a namespace, or _ for operations on
none (admin.ns.list); --op an operation (write.put) or its kind and those under
it (write, read, admin); --principal a principal's name.

--json prints each record on one line as the stream stores it (time,
principal {name, groups, via}, namespace, op, count, ids, code, latency_us,
request_id, trace_id, seq, node), for jq or a SIEM.

The audit stream lives in Prism's account (PRISM) and needs JetStream
there: in a secured deployment connect with credentials of the PRISM
account; an application account can neither read nor write it.`,
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
	natsURLFlag(fl, &f.natsURL, "NATS URL of the deployment, in the PRISM account")
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
	if filter.Since, err = parseAuditTime(f.since, now); err != nil {
		return fmt.Errorf("--since %w", err)
	}
	if f.until == "all" {
		return errors.New("--until all: all is for --since; leave --until out to list up to now")
	}
	if filter.Until, err = parseAuditTime(f.until, now); err != nil {
		return fmt.Errorf("--until %w", err)
	}

	nc, err := nats.Connect(f.natsURL, nats.Name("prism-audit"))
	if err != nil {
		return fmt.Errorf("connect to %s (set --nats-url or NATS_URL to the deployment's NATS, in the PRISM account): %w", f.natsURL, err)
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

// parseAuditTime parses a --since or --until value: "" (none), "all"
// (the Unix epoch, before any record: not none, which would make Follow
// start with new records), a duration back from now, or an RFC 3339
// time.
func parseAuditTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "all":
		return time.Unix(0, 0), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration back from now like 1h or 30m, a time like 2025-06-01T12:00:00Z, or all", s)
	}
	return t, nil
}
