package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
)

type applyFlags struct {
	adminFlags
	file     string
	revision int64
}

func newApplyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply -f NAMESPACE.yaml|DIR",
		Short: "Validate a namespace and store it in the registry of a running Prism",
		Long: `apply reads one namespace YAML file, asks the running Prism (over NATS,
--nats-url) for its plan against what is live, prints it like prism plan,
and stores the namespace in the registry. Every running gateway and
projector picks it up within a second: a new namespace is served, a changed
one is reconfigured in place (consistency, retention, stream settings,
projector batch size). Nothing restarts.

Applies are revision-checked: apply stores the namespace only if it is still
at the revision the plan was made against (or, with --revision, the revision
given), so two concurrent applies cannot overwrite each other; the loser
gets CONFLICT and should plan again. A change that needs a migration
(another backend, stream storage or abstraction) is refused with
FAILED_PRECONDITION, as are needs the deployment cannot meet.

A new namespace is stored only if the Prism that answers can serve it: a
postgres backend needs a connection string (postgres.dsn, or prism serve's
--postgres-dsn) and a server that accepts a connection, a kafka backend a
broker that listens (kafka.brokers, or prism serve's --kafka-brokers).
Otherwise apply is refused with FAILED_PRECONDITION saying what is missing,
and nothing is stored.

With -f DIR every *.yaml of DIR is applied in name order; the first that
fails stops the run (those before it are applied).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApply(cmd, cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "namespace YAML file, or a directory of them applied in name order (required)")
	cmd.Flags().Int64Var(&f.revision, "revision", -1, "apply only if the namespace is at this revision (0: only if it does not exist; -1: the revision just planned against)")
	f.register(cmd)
	return cmd
}

func runApply(cmd *cobra.Command, out io.Writer, f applyFlags) error {
	specs, client, ctx, done, err := f.specsSession(cmd, f.file)
	if err != nil {
		return err
	}
	defer done()
	if len(specs) > 1 && f.revision >= 0 {
		return fmt.Errorf("apply: --revision names one namespace's revision; -f %s holds %d namespaces", f.file, len(specs))
	}
	for i, ns := range specs {
		if i > 0 {
			fmt.Fprintln(out)
		}
		plan, err := client.Plan(ctx, ns)
		if err != nil {
			return err
		}
		if err := plan.WriteText(out); err != nil {
			return err
		}
		rev := plan.Revision
		if f.revision >= 0 {
			rev = uint64(f.revision)
		}
		res, err := client.Apply(ctx, ns, rev, whoAmI())
		if err != nil {
			return err
		}
		switch res.Action {
		case namespaces.ActionUnchanged:
			fmt.Fprintf(out, "\nnothing to apply: namespace %s is unchanged at revision %d\n", ns.Name, res.Revision)
		default:
			fmt.Fprintf(out, "\napplied: namespace %s is at revision %d\n%s\n", ns.Name, res.Revision, revisionNote(ns.Name))
		}
	}
	return nil
}

// revisionNote says what a revision number is, since a namespace's first
// one is rarely 1.
func revisionNote(ns string) string {
	return fmt.Sprintf("(a revision is the registry's change number, shared by every namespace, so it rises by more than one per change; prism ns history %s lists this namespace's)", ns)
}
