package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/gateway"
)

// planFlags are the flags of prism plan.
type planFlags struct {
	file       string
	nodes      int
	syncAlways bool
	postgres   bool
	maxPayload int
	json       bool
}

// planReport is what prism plan --json prints.
type planReport struct {
	Namespace  string            `json:"namespace"`
	Durability string            `json:"durability"`
	Settings   []gateway.Setting `json:"settings"`
	Guarantee  string            `json:"guarantee"`
	Warnings   []string          `json:"warnings"`
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan -f NAMESPACE.yaml",
		Short: "Print the settings Prism derives from a namespace's needs, with reasons",
		Long: `plan reads one namespace YAML file and prints the settings Prism derives
from its needs on the deployment described by the flags: stream replicas,
storage, max age, max message size, duplicate window, partitions, projector
batch size, read cache and the backend (when backend: auto), each with the
reason, and what an acknowledged write survives (ADR 007).

It needs no running Prism and changes nothing. A deployment that cannot give
what the namespace needs (durable on one node without --sync-always,
replicated on fewer than 3 nodes, ...) is an error saying what is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "namespace YAML file (required)")
	fl.IntVar(&f.nodes, "nodes", 1, "JetStream servers in the deployment")
	fl.BoolVar(&f.syncAlways, "sync-always", false, "the servers fsync every write before acknowledging it (prism serve --sync-always)")
	fl.BoolVar(&f.postgres, "postgres", false, "a PostgreSQL server is available (for backend: auto)")
	fl.IntVar(&f.maxPayload, "max-payload", gateway.DefaultMaxPayload, "the NATS servers' max_payload in bytes")
	fl.BoolVar(&f.json, "json", false, "print the plan as JSON")
	return cmd
}

func runPlan(out io.Writer, f planFlags) error {
	if f.file == "" {
		return errors.New("plan: -f NAMESPACE.yaml is required")
	}
	ns, err := gateway.LoadNamespaceFile(f.file)
	if err != nil {
		return err
	}
	p, err := gateway.Derive(ns, gateway.Cluster{Nodes: f.nodes, SyncAlways: f.syncAlways, Postgres: f.postgres, MaxPayload: f.maxPayload})
	if err != nil {
		return err
	}
	settings := append(p.Settings(), kafkaSettings(ns, p)...)
	if f.json {
		r := planReport{Namespace: p.Namespace, Durability: string(p.Durability), Settings: settings, Guarantee: p.Guarantee, Warnings: p.Warnings}
		if r.Warnings == nil {
			r.Warnings = []string{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(out, "namespace %s (durability %s)\n\n", p.Namespace, p.Durability)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tBECAUSE")
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", s.Name, s.Value, s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nguarantee: %s\n", p.Guarantee)
	for _, w := range p.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	return nil
}
