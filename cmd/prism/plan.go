package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
)

// planFlags are the flags of prism plan.
type planFlags struct {
	file    string
	offline bool
	cluster namespaces.Cluster // --offline's deployment
	json    bool
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	var specs []namespaces.Namespace
	cmd := adminCommand(&cobra.Command{
		Use:   "plan -f NAMESPACE.yaml",
		Short: "Print the settings Prism derives from a namespace's needs, and the diff against what is live",
		Long: `plan prints the settings Prism derives from a namespace file's needs, each
with its reason, and what an acknowledged write survives (ADR 007). By
default the running Prism at --nats-url plans for its own deployment and
diffs against the live namespace, like terraform plan (each change applied
live or needing a migration); it changes nothing. --offline plans for the
deployment its flags describe. Needs it cannot meet are an error. Limits: ADR 023.`,
		Args: cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, a admin) error {
		res, err := a.Plan(a.ctx, specs[0])
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		return res.WriteText(cmd.OutOrStdout())
	})
	live := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		if f.offline {
			return runPlan(cmd.OutOrStdout(), f)
		}
		for _, name := range []string{"nodes", "sync-always", "postgres", "max-payload"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("plan: --%s describes a deployment for --offline; without it the running Prism plans for its own", name)
			}
		}
		if specs, err = loadSpecs(cmd, f.file, false); err != nil {
			return err
		}
		return live(cmd, args)
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "namespace YAML file (required)")
	fl.BoolVar(&f.offline, "offline", false, "plan without a running Prism, for the deployment the flags below describe")
	fl.IntVar(&f.cluster.Nodes, "nodes", 1, "--offline: JetStream servers in the deployment")
	fl.BoolVar(&f.cluster.SyncAlways, "sync-always", false, "--offline: the servers fsync every write before acknowledging it (prism serve --sync-always)")
	fl.BoolVar(&f.cluster.Postgres, "postgres", false, "--offline: a PostgreSQL server is available (for backend: auto)")
	fl.IntVar(&f.cluster.MaxPayload, "max-payload", namespaces.DefaultMaxPayload, "--offline: the NATS servers' max_payload in bytes")
	fl.BoolVar(&f.json, "json", false, "print the plan as JSON")
	return cmd
}

func runPlan(out io.Writer, f planFlags) error {
	if f.file == "" {
		return errors.New("plan: -f NAMESPACE.yaml is required")
	}
	return namespaces.PlanFile(out, f.file, f.cluster, f.json)
}
