package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
)

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, redrive and drop the dead letters of a namespace",
		Long: `dlq acts on the events a namespace's targets could not apply (the dead-letter
stream PRISM_DLQ), over the admin API: list them, show one with its event,
redrive them once the cause is fixed (re-applied in order, ADR 024), or drop
them. See docs/dead-letters.md.`,
	}
	var target string
	list := replyCommand(&cobra.Command{Use: "list NAMESPACE", Short: "List a namespace's dead letters, oldest first", Args: cobra.ExactArgs(1)},
		func(a admin, args []string) (namespaces.DLQListReply, error) {
			return a.DLQListAll(a.ctx, args[0], target)
		})
	list.Flags().StringVar(&target, "target", "", "only the dead letters of this target")
	show := replyCommand(&cobra.Command{Use: "show NAMESPACE SEQ", Short: "Show a dead letter with its event (PII fields stay ciphertext)", Args: cobra.ExactArgs(2)},
		func(a admin, args []string) (namespaces.DeadLetterEvent, error) {
			seqs, err := namespaces.ParseDLQSeqs(args[1:])
			if err != nil {
				return namespaces.DeadLetterEvent{}, err
			}
			return a.DLQShow(a.ctx, args[0], seqs[0])
		})
	cmd.AddCommand(list, show, newDLQActCmd("redrive", "Re-apply dead letters to their target, then remove them"), newDLQActCmd("drop", "Delete dead letters (their events are never applied)"))
	return cmd
}

// newDLQActCmd is prism dlq redrive or drop.
func newDLQActCmd(verb, short string) *cobra.Command {
	var sel namespaces.DLQSelection
	var yes, asJSON bool
	var wait time.Duration
	cmd := adminCommand(&cobra.Command{Use: verb + " NAMESPACE [SEQ...] | --all", Short: short, Args: cobra.MinimumNArgs(1)},
		func(cmd *cobra.Command, args []string, a admin) (err error) {
			sel.Name = args[0]
			if sel.Seqs, err = namespaces.ParseDLQSeqs(args[1:]); err != nil {
				return err
			}
			if sel.All == (len(sel.Seqs) > 0) {
				return errors.New(verb + ": name the dead letters (SEQ...) or pass --all, not both")
			}
			var reply textWriter
			if verb == "redrive" {
				reply, err = a.DLQRedrive(a.ctx, sel, wait, namespaces.LocalUser(), cmd.ErrOrStderr())
			} else {
				if !asker(cmd, yes, "namespace name", sel.Name)("Drop the selected dead letters of " + sel.Name + "? Their events are never applied.") {
					return errors.New("drop: not confirmed; nothing dropped (pass --yes to skip the question)")
				}
				reply, err = a.DLQDrop(a.ctx, sel, namespaces.LocalUser(), cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			return textOrJSON(cmd.OutOrStdout(), asJSON, reply)
		})
	fl := cmd.Flags()
	fl.BoolVar(&sel.All, "all", false, "every dead letter of the namespace (of --target, when set)")
	fl.StringVar(&sel.Target, "target", "", "with --all: only this target's dead letters")
	fl.BoolVar(&asJSON, "json", false, "print the admin API's JSON reply")
	if verb == "redrive" {
		fl.DurationVar(&wait, "wait", 5*time.Second, "wait this long (at most 8s a request) for the targets to apply what was redriven")
	} else {
		fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	}
	return cmd
}
