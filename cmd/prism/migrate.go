package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/progress"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move a live namespace to another backend with no downtime",
		Long: `migrate moves a namespace to a new target (SQLite to PostgreSQL, another
server or schema) while it serves: start, verify, cutover, finalize; status
follows it, rollback undoes a cutover or abandons it. Every transition is
checked against the state and recorded (prism ns history). See
docs/migration.md.`,
	}
	cmd.AddCommand(newMigrateStartCmd(), newMigrateStatusCmd(), newMigrateVerifyCmd(),
		newMigrateStepCmd("cutover", namespaces.AdminMigrateCutover, "Serve reads from the new target (needs a passed verify)",
			`cutover moves every gateway's reads to the new target at once, each gateway
first waiting until it applied everything the old one had, so reads never
go back in time. The old target keeps projecting, for prism migrate rollback.`),
		newMigrateStepCmd("rollback", namespaces.AdminMigrateRollback, "Move reads back, or abandon a migration",
			`rollback after a cutover moves reads back to the old target (shadowing: the
next cutover needs a new verify). Before a cutover it abandons the migration:
the new target stops, its data is kept. There is none after finalize.`),
		newMigrateStepCmd("finalize", namespaces.AdminMigrateFinalize, "Make the new target the namespace's primary",
			`finalize ends a cut-over migration: the new target becomes the primary, the
old one stops (its data kept). Then change the namespace's file to the new
backend, else apply asks for a migration.`),
	)
	return cmd
}

func newMigrateStartCmd() *cobra.Command {
	var to namespaces.Target
	var o namespaces.MigrationOptions
	cmd := adminCommand(&cobra.Command{
		Use:   "start NAME --to BACKEND",
		Short: "Start moving a namespace to a new target",
		Long: `start records a migration of NAME to a new target, which the serving Prism
backfills from the stream, throttled, then follows. It is refused, with
nothing recorded, when that Prism cannot open the target; a target that
fails later shows in prism migrate status, and prism migrate rollback NAME
abandons it.`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			if to.Backend == "" {
				return errors.New("--to BACKEND is required (sqlite, postgres, natskv or neptune)")
			}
			return nil
		},
	}, func(cmd *cobra.Command, args []string, a admin) error {
		n, err := a.StartMigration(a.ctx, args[0], to, o, namespaces.LocalUser())
		if err != nil {
			return err
		}
		m := n.Migration
		fmt.Fprintf(cmd.OutOrStdout(), "migration of %s started: %s (%s) → %s (%s), state %s\nfollow it with: prism migrate status %s --watch\n",
			args[0], m.From.Name, m.From.Backend, m.To.Name, m.To.Backend, m.State, args[0])
		return nil
	})
	cmd.Flags().StringVar(&to.Backend, "to", "", "backend of the new target: sqlite, postgres, natskv or neptune")
	cmd.Flags().StringVar(&to.Name, "target", "", "name of the new target (default: the backend's name)")
	cmd.Flags().StringVar(&to.Postgres.DSN, "postgres-dsn", "", "PostgreSQL connection string of a postgres target, without a password (default: the serving Prism's --postgres-dsn)")
	cmd.Flags().IntVar(&o.MaxRate, "max-rate", 0, "cap the backfill at this many events per second (0: no cap)")
	cmd.Flags().BoolVar(&o.Adaptive, "adaptive", true, "slow the backfill down while the live target's projector lags")
	cmd.Flags().Float64Var(&o.ShadowSample, "shadow-sample", namespaces.DefaultShadowSample, "fraction of gets compared against the other target once caught up")
	return cmd
}

func newMigrateVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := adminCommand(&cobra.Command{
		Use:   "verify NAME",
		Short: "Compare the old and new targets at one checkpoint",
		Long: `verify compares the two targets of a migration at one checkpoint, down to
the ids missing, extra or different (never values), bounded by --timeout.
A pass moves it to verified; a failure keeps it shadowing and exits 1. See
docs/replay.md#verify.`,
		Args: cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		reply, err := node.RequestVerify(cmd.Context(), a.AdminClient, args[0], namespaces.LocalUser(), a.timeout)
		if err != nil {
			return err
		}
		if asJSON {
			err = writeJSON(cmd.OutOrStdout(), reply.Report)
		} else {
			err = reply.WriteText(cmd.OutOrStdout(), args[0])
		}
		if err != nil {
			return err
		}
		if !reply.Report.Passed() {
			return errVerifyFailed
		}
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().Lookup("timeout").DefValue = "10m"
	_ = cmd.Flags().Set("timeout", "10m")
	return cmd
}

// errVerifyFailed makes prism exit 1 after a report that says why.
var errVerifyFailed = errors.New("verify did not pass: the targets differ (see the report)")

func newMigrateStepCmd(use, op, short, long string) *cobra.Command {
	return adminCommand(&cobra.Command{Use: use + " NAME", Short: short, Long: long, Args: cobra.ExactArgs(1)},
		func(cmd *cobra.Command, args []string, a admin) error {
			return a.MigrateStep(a.ctx, cmd.OutOrStdout(), op, args[0], namespaces.LocalUser())
		})
}

func newMigrateStatusCmd() *cobra.Command {
	var watch, asJSON bool
	var every time.Duration
	cmd := adminCommand(&cobra.Command{
		Use:   "status NAME",
		Short: "Show where a migration stands",
		Long: `status shows a namespace's migration: state, history, the last verify, each
target's checkpoint and lag. --watch follows the backfill until the
migration leaves backfilling.`,
		Args: cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		out := cmd.OutOrStdout()
		if watch {
			n, err := progress.WatchBackfill(cmd.Context(), a.AdminClient, args[0], every, out)
			if m := n.Migration; m != nil { // nil: no migration, or the first read failed
				fmt.Fprintf(out, "migration of %s is %s; next: %s\n", args[0], m.State, namespaces.MigrationAdvice(m.State, m.Verify == nil || m.Verify.Passed, args[0]))
			}
			return err
		}
		n, err := a.Get(a.ctx, args[0])
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(out, n)
		}
		return n.WriteMigration(out)
	})
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the backfill's progress")
	cmd.Flags().DurationVar(&every, "every", time.Second, "how often --watch refreshes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	return cmd
}
