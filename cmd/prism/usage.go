package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/prism-data/prism/internal/suggest"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build does); node.BuildVersion says what is printed without it.
var version string

// strictTree makes the command line refuse what it does not know, with a
// hint: a command group (ns, migrate) given an unknown subcommand fails
// instead of printing its help and exiting 0, and an unknown flag names the
// nearest valid one.
func strictTree(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(flagError)
	if cmd.HasSubCommands() && cmd.HasParent() && !cmd.Runnable() {
		cmd.Args = unknownSubcommand
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	for _, c := range cmd.Commands() {
		strictTree(c)
	}
}

// unknownSubcommand refuses any argument of a command group: cobra only
// checks subcommand names on the root command.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
			names = append(names, c.Aliases...)
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s, ok := suggest.Nearest(args[0], names); ok {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return errors.New(msg + "\nRun '" + cmd.CommandPath() + " --help' for its commands.")
}

// flagError adds "did you mean --x?" to pflag's unknown-flag errors.
func flagError(cmd *cobra.Command, err error) error {
	const prefix = "unknown flag: --"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return err
	}
	var names []string
	visit := func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if s, ok := suggest.Nearest(strings.TrimPrefix(msg, prefix), names); ok {
		return fmt.Errorf("%w; did you mean --%s?", err, s)
	}
	return err
}
