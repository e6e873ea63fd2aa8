package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
)

func newNsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ns",
		Short: "List, show and delete the namespaces of a running Prism",
		Long: `ns talks to a running Prism over NATS (--nats-url), through its admin API
(prism.$admin.ns.*), so it works against a remote deployment.`,
	}
	cmd.AddCommand(newNsListCmd(), newNsGetCmd(), newNsHistoryCmd(), newNsDeleteCmd())
	return cmd
}

// textWriter is a reply that prints itself for people.
type textWriter interface{ WriteText(io.Writer) error }

// textOrJSON prints v as the admin API's JSON reply, or as its text.
func textOrJSON(out io.Writer, asJSON bool, v textWriter) error {
	if asJSON {
		return writeJSON(out, v)
	}
	return v.WriteText(out)
}

// replyCommand completes cmd as a command of the admin API that prints
// the reply of call as text, or with --json as the admin API's JSON.
func replyCommand[T textWriter](cmd *cobra.Command, call func(a admin, args []string) (T, error)) *cobra.Command {
	var asJSON bool
	adminCommand(cmd, func(cmd *cobra.Command, args []string, a admin) error {
		r, err := call(a, args)
		if err != nil {
			return err
		}
		return textOrJSON(cmd.OutOrStdout(), asJSON, r)
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	return cmd
}

func newNsListCmd() *cobra.Command {
	return replyCommand(&cobra.Command{Use: "list", Short: "List the registered namespaces with their state", Args: cobra.NoArgs},
		func(a admin, _ []string) (namespaces.AdminListReply, error) { return a.List(a.ctx) })
}

func newNsGetCmd() *cobra.Command {
	var output string
	cmd := adminCommand(&cobra.Command{
		Use:   "get NAME",
		Short: "Show a namespace: its declaration, derived settings and targets",
		Long: `get shows a namespace as registered: its declaration, who applied it and when,
the settings derived here and its targets' checkpoint and lag. -o yaml prints
the declaration alone (a file prism apply -f accepts), -o json the reply.`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			if output != "text" && output != "yaml" && output != "json" {
				return fmt.Errorf("-o %q: want text, yaml or json", output)
			}
			return nil
		},
	}, func(cmd *cobra.Command, args []string, a admin) error {
		n, err := a.Get(a.ctx, args[0])
		if err != nil {
			return err
		}
		if output == "yaml" {
			return n.WriteYAML(cmd.OutOrStdout())
		}
		return textOrJSON(cmd.OutOrStdout(), output == "json", n)
	})
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, yaml or json")
	return cmd
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newNsHistoryCmd() *cobra.Command {
	return replyCommand(&cobra.Command{
		Use:   "history NAME",
		Short: "Show who applied what to a namespace, and when",
		Long: `history lists the revisions of a namespace the registry keeps (the last 16),
oldest first: when, by whom, and what changed from the revision before. A
purge removes the history with the namespace.`,
		Args: cobra.ExactArgs(1),
	}, func(a admin, args []string) (namespaces.AdminHistoryReply, error) { return a.History(a.ctx, args[0]) })
}

func newNsDeleteCmd() *cobra.Command {
	var yes, purge bool
	var revision uint64
	cmd := adminCommand(&cobra.Command{
		Use:   "delete NAME",
		Short: "Stop serving a namespace (its data is kept unless --purge)",
		Long: `delete removes a namespace from the registry: gateways stop serving it
(NAMESPACE_NOT_FOUND), its projector stops; its stream and data are kept for
applying it again, unless --purge. It asks for the name unless --yes.`,
		Args: cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		return a.DeleteNamespace(a.ctx, args[0], revision, purge, asker(cmd, yes, "namespace name", args[0]), cmd.OutOrStdout())
	})
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&purge, "purge", false, "delete the namespace's stream and backend data too")
	cmd.Flags().Uint64Var(&revision, "revision", 0, "delete only if the namespace is at this revision (default: the one just read)")
	return cmd
}

// asker is a confirmation for people: true with --yes (yes), else it
// prints the question and wants want (what) typed on stdin.
func asker(cmd *cobra.Command, yes bool, what, want string) func(question string) bool {
	return func(question string) bool {
		if yes {
			return true
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType the %s to confirm: ", question, what)
		return confirm(cmd.InOrStdin(), want)
	}
}

// confirm reads one line from in and reports whether it is want.
func confirm(in io.Reader, want string) bool {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	return strings.TrimSpace(line) == want
}
