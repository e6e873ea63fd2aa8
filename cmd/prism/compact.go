package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// compactFlags are the flags of prism compact.
type compactFlags struct {
	Conn                  natsconn.Options
	retention, timeout    time.Duration
	keep, asJSON, verbose bool
	concurrency           int
}

func newCompactCmd() *cobra.Command {
	var f compactFlags
	cmd := &cobra.Command{
		Use:   "compact NAMESPACE",
		Short: "Compact a KeyValue namespace's stream to one event per record",
		Long: `compact runs one compaction pass over a KeyValue namespace's event stream
(ADR 012): each record written more than once is folded into one event,
losing no write; a deleted record keeps a tombstone until every target has
it and it is older than --tombstone-retention. It may run while Prism
serves the namespace. See docs/replay.md#compaction.`,
		Example: `  prism compact orders
  prism compact orders --nats-url nats://10.0.0.5:4222 --json
  prism compact orders --tombstone-retention 0 # purge tombstones every target has applied`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompact(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	f.Conn.Register(fl, "NATS URL of the deployment")
	fl.DurationVar(&f.retention, "tombstone-retention", replay.DefaultTombstoneRetention, "keep a deleted record's last event at least this long (0: purge it once every target has applied it)")
	fl.BoolVar(&f.keep, "keep-tombstones", false, "never purge the last event of a deleted record")
	fl.IntVar(&f.concurrency, "concurrency", replay.DefaultCompactConcurrency, "records folded at once (1 to 64)")
	fl.DurationVar(&f.timeout, "timeout", 0, "give up after this long (0: no limit); what was compacted stays compacted")
	fl.BoolVar(&f.asJSON, "json", false, "print the pass's counts as JSON")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log each record purged or skipped")
	return cmd
}

func runCompact(cmd *cobra.Command, ns string, f compactFlags) error {
	if err := subjects.ValidateNamespace(ns); err != nil {
		return err
	}
	ctx := cmd.Context()
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	f.Conn.Name = "prism-compact"
	nc, js, err := f.Conn.ConnectJetStream(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	opts := []replay.CompactOption{
		replay.WithCompactLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))),
		replay.WithTombstoneRetention(f.retention),
		replay.WithCompactConcurrency(f.concurrency),
	}
	if f.keep {
		opts = append(opts, replay.WithoutTombstonePurge())
	}
	start := time.Now()
	stats, err := replay.Compact(ctx, js, ns, opts...)
	took := time.Since(start)
	auditRun(ctx, js, "compact.run", ns, uint64(stats.RolledUp), err, took)
	if err != nil {
		if stats.RolledUp+stats.TombstonesPurged > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "before it stopped, the pass rolled up %d records and purged %d tombstones\n", stats.RolledUp, stats.TombstonesPurged)
		}
		return err
	}
	return textOrJSON(cmd.OutOrStdout(), f.asJSON, replay.NewCompactReport(ns, took, stats))
}
