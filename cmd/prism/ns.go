package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

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

// textOrJSON prints v as the admin API's JSON reply, or as its text.
func textOrJSON(out io.Writer, asJSON bool, v interface{ WriteText(io.Writer) error }) error {
	if asJSON {
		return writeJSON(out, v)
	}
	return v.WriteText(out)
}

func newNsListCmd() *cobra.Command {
	var asJSON bool
	cmd := adminCommand(&cobra.Command{
		Use:   "list",
		Short: "List the registered namespaces with their state",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, a admin) error {
		list, err := a.List(a.ctx)
		if err != nil {
			return err
		}
		return textOrJSON(cmd.OutOrStdout(), asJSON, list)
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	return cmd
}

func newNsGetCmd() *cobra.Command {
	var output string
	cmd := adminCommand(&cobra.Command{
		Use:   "get NAME",
		Short: "Show a namespace: its declaration, derived settings and targets",
		Long: `get shows a namespace as registered: its declaration, who applied it and
when, the settings derived for this deployment, and its targets' state
(checkpoint, lag). -o yaml prints the declaration alone, as a file prism
apply -f accepts; -o json the admin API's whole reply.`,
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
		return printNamespace(cmd.OutOrStdout(), n, output)
	})
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, yaml or json")
	return cmd
}

// printNamespace prints n as -o asks: text, the declaration as YAML, or
// the admin API's JSON.
func printNamespace(out io.Writer, n namespaces.AdminNamespace, format string) error {
	if format != "yaml" {
		return textOrJSON(out, format == "json", n)
	}
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	if err := enc.Encode(n.Namespace); err != nil {
		return err
	}
	return enc.Close()
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newNsHistoryCmd() *cobra.Command {
	var asJSON bool
	cmd := adminCommand(&cobra.Command{
		Use:   "history NAME",
		Short: "Show who applied what to a namespace, and when",
		Long: `history lists the revisions of a namespace the registry keeps (the last 16),
oldest first: when, by whom, and what changed from the revision before. A
purge removes the history with the namespace.`,
		Args: cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		h, err := a.History(a.ctx, args[0])
		if err != nil {
			return err
		}
		return textOrJSON(cmd.OutOrStdout(), asJSON, h)
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	return cmd
}

func newNsDeleteCmd() *cobra.Command {
	var yes, purge bool
	var revision uint64
	cmd := adminCommand(&cobra.Command{
		Use:   "delete NAME",
		Short: "Stop serving a namespace (its data is kept unless --purge)",
		Long: `delete removes a namespace from the registry: every gateway stops serving
it (NAMESPACE_NOT_FOUND) and its projector stops. Its stream and backend
data are kept, so applying it again serves the same data; --purge deletes
them too, for good. It asks for the namespace's name unless --yes.`,
		Args: cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		name := args[0]
		n, err := a.Get(a.ctx, name)
		if err != nil {
			return err
		}
		if revision == 0 {
			revision = n.Revision
		}
		if !yes {
			what := "its stream and data are kept"
			if purge {
				what = "its stream and ALL ITS DATA ARE DELETED"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Delete namespace %s (revision %d, %s %s)? %s.\nType the namespace name to confirm: ", name, n.Revision, n.Namespace.Abstraction, n.Backend, what)
			if !confirm(cmd.InOrStdin(), name) {
				return errors.New("delete: not confirmed; nothing deleted (pass --yes to skip the question)")
			}
		}
		if _, err := a.Delete(a.ctx, name, revision, purge); err != nil {
			return err
		}
		if purge {
			fmt.Fprintf(cmd.OutOrStdout(), "deleted namespace %s; its stream and data are being purged\n", name)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "deleted namespace %s; its stream and data are kept (apply it again to serve them)\n", name)
		}
		return nil
	})
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&purge, "purge", false, "delete the namespace's stream and backend data too")
	cmd.Flags().Uint64Var(&revision, "revision", 0, "delete only if the namespace is at this revision (default: the one just read)")
	return cmd
}

// confirm reads one line from in and reports whether it is want.
func confirm(in io.Reader, want string) bool {
	if in == nil {
		in = os.Stdin
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	return strings.TrimSpace(line) == want
}
