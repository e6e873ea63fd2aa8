package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move a live namespace to another backend with no downtime",
		Long: `migrate moves a namespace from its primary target to a new one (SQLite to
PostgreSQL, PostgreSQL to another server or schema) while it serves reads
and writes:

  prism migrate start NAME --to postgres    planned → backfilling: the new target
                                            replays the stream (throttled), then
                                            → shadowing: caught up, follows the tail,
                                            sampled reads compared against it
  prism migrate status NAME [--watch]       where it stands, with backfill progress
  prism migrate verify NAME                 compares both targets at one checkpoint
                                            → verified when they are equal
  prism migrate cutover NAME                reads move to the new target; the old
                                            one keeps projecting, for rollback
  prism migrate rollback NAME               undo the cutover (or abandon the migration)
  prism migrate finalize NAME               the new target becomes the primary; the
                                            old one stops, its data is kept

Every transition is checked against the state and recorded with who made it
and when, in the namespace's registry entry (prism ns history shows them). The
commands talk to a running Prism over NATS (--nats-url); see docs/migration.md.`,
	}
	cmd.AddCommand(newMigrateStartCmd(), newMigrateStatusCmd(), newMigrateVerifyCmd(),
		newMigrateStepCmd("cutover", namespaces.AdminMigrateCutover, "Serve reads from the new target (needs a passed verify)",
			`cutover moves every gateway's reads to the new target at once. Each gateway
first waits until the new target applied everything the old one had, so
reads never fail and never go back in time; strong writes wait for both
targets while the migration is verified or cut over. The old target keeps
projecting, so prism migrate rollback can move reads back.`),
		newMigrateStepCmd("rollback", namespaces.AdminMigrateRollback, "Move reads back, or abandon a migration",
			`rollback after a cutover moves reads back to the old target; the migration
returns to shadowing and needs a new verify before the next cutover. Before a
cutover it abandons the migration: the new target stops, its data is kept.
There is no rollback after finalize.`),
		newMigrateStepCmd("finalize", namespaces.AdminMigrateFinalize, "Make the new target the namespace's primary",
			`finalize ends a cut-over migration: the new target becomes the namespace's
primary (and its backend the namespace's backend), the old target's
projector stops and its data is kept until you remove it. It cannot be
rolled back. Update the namespace's file to the new backend afterwards: prism
apply of the old backend would ask for a migration.`),
	)
	return cmd
}

func newMigrateStartCmd() *cobra.Command {
	var f adminFlags
	var to namespaces.Target
	var o namespaces.MigrationOptions
	cmd := &cobra.Command{
		Use:   "start NAME --to BACKEND",
		Short: "Start moving a namespace to a new target",
		Long: `start records a migration of namespace NAME to a new target. The Prism that
serves NAME starts the target at once: its projector replays the namespace's
stream from the start (bounded by live data, see docs/replay.md), at most
--max-rate events per second and slower while the live target lags
(--adaptive), then follows the live tail.

The target is named after its backend unless --target names it; a second
target on the same backend needs another name (e.g. --to postgres --target
pg2 for another schema or server).

The serving Prism first checks that it can open the target (a postgres one
needs --postgres-dsn here or on prism serve, and a server that accepts a
connection); otherwise the start is refused and nothing is recorded. A
target that still does not start shows its error in prism migrate status;
prism migrate rollback NAME abandons the migration.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to.Backend == "" {
				return errors.New("--to BACKEND is required (sqlite, postgres or natskv)")
			}
			client, ctx, done, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := client.StartMigration(ctx, args[0], to, o, whoAmI())
			if err != nil {
				return err
			}
			m := n.Migration
			fmt.Fprintf(cmd.OutOrStdout(), "migration of %s started: %s (%s) → %s (%s), state %s\nfollow it with: prism migrate status %s --watch\n",
				args[0], m.From.Name, m.From.Backend, m.To.Name, m.To.Backend, m.State, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&to.Backend, "to", "", "backend of the new target: sqlite, postgres or natskv")
	cmd.Flags().StringVar(&to.Name, "target", "", "name of the new target (default: the backend's name)")
	cmd.Flags().StringVar(&to.Postgres.DSN, "postgres-dsn", "", "PostgreSQL connection string of a postgres target, without a password (default: the serving Prism's --postgres-dsn)")
	cmd.Flags().IntVar(&o.MaxRate, "max-rate", 0, "cap the backfill at this many events per second (0: no cap)")
	cmd.Flags().BoolVar(&o.Adaptive, "adaptive", true, "slow the backfill down while the live target's projector lags")
	cmd.Flags().Float64Var(&o.ShadowSample, "shadow-sample", namespaces.DefaultShadowSample, "fraction of gets compared against the other target once caught up")
	f.register(cmd)
	return cmd
}

func newMigrateVerifyCmd() *cobra.Command {
	var f adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Compare the old and new targets at one checkpoint",
		Long: `verify compares the two targets of a shadowing, verified or cut-over migration, like
Vitess's VDiff: it waits until both applied the stream up to the same
checkpoint, reads both in id order, compares checksums of id ranges and
narrows mismatched ranges down to the records that are missing from the new
target, extra in it, or differ (items or revision). Writes that land during
the comparison are re-read rather than reported. Only ids are shown, never
values.

A passed verify moves the migration to verified (cutover needs it); a failed
one keeps it shadowing. After a cutover the state stays, but finalize needs
the last verify to have passed. The comparison runs in the Prism that projects the
namespace; --timeout bounds it (large namespaces take minutes). Exit status
1 when it did not pass.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, done, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			var reply node.VerifyReply
			req := node.VerifyRequest{By: whoAmI(), TimeoutMS: f.timeout.Milliseconds()}
			if err := client.Request(ctx, subjects.Owner(args[0], node.OpVerify), "migrate.verify", req, &reply); err != nil {
				if e := (*status.Error)(nil); errors.As(err, &e) && e.Code == status.ErrUnavailable.Code {
					return fmt.Errorf("%w (verify runs in the Prism that projects %s; is it running and reachable?)", err, args[0])
				}
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, reply.Report); err != nil {
					return err
				}
			} else {
				if err := reply.Report.WriteTable(out); err != nil {
					return err
				}
				fmt.Fprintf(out, "\nmigration of %s is %s; next: %s\n", args[0], reply.State, namespaces.MigrationAdvice(reply.State, reply.Report.Passed(), args[0]))
			}
			if !reply.Report.Passed() {
				return errVerifyFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.register(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "10m"
	_ = cmd.Flags().Set("timeout", "10m")
	return cmd
}

// errVerifyFailed makes prism exit 1 after a report that says why.
var errVerifyFailed = errors.New("verify did not pass: the targets differ (see the report)")

func newMigrateStepCmd(use, op, short, long string) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, ctx, done, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := client.Migrate(ctx, op, args[0], whoAmI())
			if err != nil {
				return err
			}
			m := n.Migration
			last := m.History[len(m.History)-1]
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "migration of %s: %s → %s (%s)\n", args[0], last.From, last.To, last.Note)
			if m.State == namespaces.MigrationRolledBack {
				return nil
			}
			// The transition is recorded; the serving process moves the
			// reads once the target it moves them to has caught up.
			reading := m.From.Name
			if m.State == namespaces.MigrationCutOver || m.State == namespaces.MigrationFinalized {
				reading = m.To.Name
			}
			switch served, err := client.WaitReading(ctx, args[0], reading); {
			case err != nil:
				fmt.Fprintf(out, "reads not moved to %s yet (%v); follow with prism migrate status %s\n", reading, err, args[0])
			case served:
				fmt.Fprintf(out, "reads are served by %s\n", reading)
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newMigrateStatusCmd() *cobra.Command {
	var f adminFlags
	var watch, asJSON bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show where a migration stands",
		Long: `status shows a namespace's migration: its state and history (who made each
transition, when), the last verify, and each target's checkpoint and lag.
With --watch it follows the backfill: events done of the stream's total,
rate, time left, and the new target's lag behind the live head, until the
migration leaves backfilling (or for as long as you watch).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, ctx, done, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer done()
			out := cmd.OutOrStdout()
			if !watch {
				n, err := client.Get(ctx, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(out, n)
				}
				return n.WriteMigration(out)
			}
			return watchMigration(cmd.Context(), client, args[0], every, out)
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the backfill's progress")
	cmd.Flags().DurationVar(&every, "every", time.Second, "how often --watch refreshes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	f.register(cmd)
	return cmd
}

// watchMigration shows the backfill's progress (a bar on a terminal,
// plain lines every interval otherwise: events done of the stream's total,
// rate, ETA, lag behind the head, throttle) until the migration leaves
// planned/backfilling or ctx ends.
func watchMigration(ctx context.Context, client *namespaces.AdminClient, name string, every time.Duration, out io.Writer) error {
	n, err := client.Get(ctx, name)
	if err != nil {
		return err
	}
	if n.Migration == nil {
		return fmt.Errorf("namespace %s has no migration", name)
	}
	to := n.Migration.To.Name
	var cur atomic.Pointer[namespaces.AdminNamespace]
	cur.Store(&n)
	target := func() namespaces.TargetStatus {
		for _, t := range cur.Load().Targets {
			if t.Target == to {
				return t
			}
		}
		return namespaces.TargetStatus{}
	}
	if n.Migration.State.Backfilling() {
		src := progress.Source{
			Applied: func() uint64 { return target().Checkpoint },
			Head:    func() uint64 { return target().StreamLast },
			Throttle: func() *replay.ThrottleState {
				th := target().Throttle
				if th == nil {
					return nil
				}
				return &replay.ThrottleState{Rate: th.Rate, MaxRate: th.MaxRate, Throttled: th.Reason != "", Reason: th.Reason}
			},
		}
		rep := progress.Start("backfill "+to, src, progress.NewMeter(0, 0, time.Now(), false), out, every)
		for cur.Load().Migration.State.Backfilling() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(progress.BarTick):
			}
			if n, err := client.Get(ctx, name); err == nil && n.Migration != nil {
				cur.Store(&n)
			}
		}
		rep.Stop()
	}
	m := cur.Load().Migration
	fmt.Fprintf(out, "migration of %s is %s; next: %s\n", name, m.State, namespaces.MigrationAdvice(m.State, m.Verify == nil || m.Verify.Passed, name))
	return ctx.Err()
}
