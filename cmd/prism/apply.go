package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
)

func newApplyCmd() *cobra.Command {
	var file string
	var revision int64
	var specs []namespaces.Namespace
	cmd := adminCommand(&cobra.Command{
		Use:   "apply -f NAMESPACE.yaml|DIR",
		Short: "Validate a namespace and store it in the registry of a running Prism",
		Long: `apply plans a namespace file (or every *.yaml of -f DIR, in name order,
stopping at the first failure) against the running Prism, prints the plan
like prism plan, and stores it in the registry; gateways and projectors
pick it up without a restart. It stores only at the revision planned
against (or --revision): of two concurrent applies the loser gets CONFLICT.
What is refused (FAILED_PRECONDITION, nothing stored): docs/admin-api.md.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) (err error) {
			if specs, err = loadSpecs(cmd, file, true); err == nil && len(specs) > 1 && revision >= 0 {
				err = fmt.Errorf("apply: --revision names one namespace's revision; -f %s holds %d namespaces", file, len(specs))
			}
			return err
		},
	}, func(cmd *cobra.Command, _ []string, a admin) error {
		out := cmd.OutOrStdout()
		for i, ns := range specs {
			if i > 0 {
				fmt.Fprintln(out)
			}
			plan, err := a.Plan(a.ctx, ns)
			if err != nil {
				return err
			}
			if err := plan.WriteText(out); err != nil {
				return err
			}
			rev := plan.Revision
			if revision >= 0 {
				rev = uint64(revision)
			}
			res, err := a.Apply(a.ctx, ns, rev, namespaces.LocalUser())
			if err != nil {
				return err
			}
			switch res.Action {
			case namespaces.ActionUnchanged:
				fmt.Fprintf(out, "\nnothing to apply: namespace %s is unchanged at revision %d\n", ns.Name, res.Revision)
			default:
				fmt.Fprintf(out, "\napplied: namespace %s is at revision %d\n%s\n", ns.Name, res.Revision, revisionNote(ns.Name))
				fmt.Fprintln(out, a.WaitServed(a.ctx, ns.Name, res.Revision))
			}
		}
		return nil
	})
	cmd.Flags().StringVarP(&file, "file", "f", "", "namespace YAML file, or a directory of them applied in name order (required)")
	cmd.Flags().Int64Var(&revision, "revision", -1, "apply only if the namespace is at this revision (0: only if it does not exist; -1: the revision just planned against)")
	return cmd
}

// revisionNote says what a revision number is, since a namespace's first
// one is rarely 1.
func revisionNote(ns string) string {
	return fmt.Sprintf("(a revision is the registry's change number, shared by every namespace, so it rises by more than one per change; prism ns history %s lists this namespace's)", ns)
}
