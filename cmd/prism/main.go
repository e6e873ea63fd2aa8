// Command prism is Prism's one binary: `prism serve` runs the gateway, the
// projectors and (by default) an embedded NATS server with SQLite storage.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/node"
)

func main() {
	node.TuneGC()
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "prism:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "prism",
		Short:         "Prism is a data access gateway over NATS JetStream",
		Long:          "Prism is a data access gateway: applications write and read through NATS request-reply;\nevery write is an event on a JetStream stream, projected into each namespace's backend.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       node.BuildVersion(version),
	}
	root.AddCommand(newServeCmd(), newBenchCmd())
	root.AddCommand(newPlanCmd(), newApplyCmd(), newNsCmd(), newMigrateCmd(), newReplayCmd(), newCompactCmd(), newDLQCmd())
	root.AddCommand(newAuthCmd(), newAuditCmd(), newKeysCmd(), newForgetCmd())
	strictTree(root)
	return root
}
