package namespaces

// The text the prism command line prints of admin API replies. It is for
// people and may change; programs read the JSON of the same replies.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth"
)

// WriteText writes the plan's settings table, guarantee and warnings.
func (p PlanReport) WriteText(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tBECAUSE")
	for _, s := range p.Settings {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.ValueString(), s.Reason)
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

// WriteText writes what a plan or an apply found, like terraform plan: the
// action, each change with how it takes effect, the settings.
func (r ApplyResult) WriteText(out io.Writer) error {
	switch r.Action {
	case ActionCreate:
		fmt.Fprintf(out, "namespace %s: create\n", r.Plan.Namespace)
	case ActionUnchanged:
		fmt.Fprintf(out, "namespace %s: unchanged (revision %d)\n", r.Plan.Namespace, r.Revision)
	default:
		fmt.Fprintf(out, "namespace %s: update revision %d\n", r.Plan.Namespace, r.Revision)
	}
	for _, c := range r.Changes {
		line := fmt.Sprintf("  ~ %s: %s → %s (%s)", c.Field, orNone(c.From), orNone(c.To), c.Effect)
		if c.Reason != "" && strings.HasPrefix(c.Field, "settings.") || c.Effect == EffectMigration {
			line += ": " + c.Reason
		}
		fmt.Fprintln(out, line)
	}
	if r.Blocked != "" {
		fmt.Fprintf(out, "\napply would refuse: %s\n", r.Blocked)
	}
	writeAccess(out, r.Access)
	fmt.Fprintln(out)
	return r.Plan.WriteText(out)
}

// writeAccess writes who may use the namespace when authentication is on.
func writeAccess(out io.Writer, p auth.Policy) {
	if p.IsZero() {
		fmt.Fprintln(out, "\naccess: global admins only (no access: block; with authentication on, nobody else may use it)")
		return
	}
	fmt.Fprintln(out, "\naccess (with authentication on; global admins may do everything):")
	for _, perm := range auth.AllPermissions() {
		fmt.Fprintf(out, "  %-9s %s\n", string(perm)+":", orNone(strings.Join(p.Entries(perm), ", ")))
	}
}

func orNone(s string) string {
	if s == "" || s == "[]" {
		return "(none)"
	}
	return s
}

// targetSummary is the STATE and LAG columns of ns list.
func targetSummary(ts []TargetStatus) (string, string) {
	if len(ts) == 0 {
		return "-", "-"
	}
	states, lags := make([]string, len(ts)), make([]string, len(ts))
	for i, t := range ts {
		states[i], lags[i] = t.State, fmt.Sprint(t.Lag)
	}
	return strings.Join(states, ","), strings.Join(lags, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText writes the namespace as prism ns get shows it: revision,
// backend, who applied it, its declaration, the derived settings and the
// state of its targets.
func (n AdminNamespace) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "namespace %s: revision %d, backend %s, applied %s by %s\n\n", n.Namespace.Name, n.Revision, n.Backend,
		n.AppliedAt.Local().Format(time.RFC3339), orDash(n.AppliedBy))
	spec, err := yaml.Marshal(n.Namespace)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n", spec)
	if n.Plan != nil {
		if err := n.Plan.WriteText(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "plan: %s\n", n.PlanError)
	}
	fmt.Fprintln(out)
	if len(n.Targets) == 0 {
		fmt.Fprintln(out, "targets: not served by the Prism that answered")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tROLE\tSTATE\tCHECKPOINT\tSTREAM LAST\tLAG\tERROR")
	for _, t := range n.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Target, t.Role, t.State, t.Checkpoint, t.StreamLast, t.Lag, orDash(t.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range n.Targets {
		if len(t.Indexes) > 0 {
			parts := make([]string, len(t.Indexes))
			for i, x := range t.Indexes {
				parts[i] = x.String()
			}
			fmt.Fprintf(out, "indexes of %s: %s\n", t.Target, strings.Join(parts, "; "))
		}
	}
	return nil
}

// DescribeChange says in one line what cur changed from prev (nil: it was
// created), as prism ns history shows it.
func DescribeChange(prev, cur *Registered) string {
	if prev == nil {
		return fmt.Sprintf("created: %s on %s, %s", cur.Namespace.Abstraction, cur.Backend, cur.Namespace.Consistency)
	}
	changes := Diff(prev.Namespace, Plan{}, cur.Namespace, Plan{})
	var parts []string
	if m := migrationStep(prev, cur); m != "" {
		parts = append(parts, m)
	}
	for _, c := range changes {
		parts = append(parts, fmt.Sprintf("%s %s → %s", c.Field, orNone(c.From), orNone(c.To)))
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// migrationStep describes the migration transition from prev to cur (the
// last one cur's history records, with who made it), "" when there is
// none.
func migrationStep(prev, cur *Registered) string {
	m := cur.Migration
	if m == nil || len(m.History) == 0 || (prev.Migration != nil && len(prev.Migration.History) == len(m.History) && prev.Migration.State == m.State) {
		return ""
	}
	t := m.History[len(m.History)-1]
	return fmt.Sprintf("migration to %s: %s → %s by %s (%s)", m.To.Name, orNone(string(t.From)), t.To, orDash(t.By), t.Note)
}

// WriteMigration writes n's migration as prism migrate status shows it:
// its state and next step, its history and its targets.
func (n AdminNamespace) WriteMigration(out io.Writer) error {
	m := n.Migration
	if m == nil {
		fmt.Fprintf(out, "namespace %s has no migration; its primary target is %s (%s)\n", n.Namespace.Name, n.PrimaryTarget().Name, n.PrimaryTarget().Backend)
		return nil
	}
	fmt.Fprintf(out, "migration of %s: %s (%s) → %s (%s)\nstate: %s; next: %s\n", n.Namespace.Name, m.From.Name, m.From.Backend, m.To.Name, m.To.Backend, m.State,
		MigrationAdvice(m.State, m.Verify == nil || m.Verify.Passed, n.Namespace.Name))
	rate := "no cap"
	if m.MaxRate > 0 {
		rate = fmt.Sprintf("%d events/s", m.MaxRate)
	}
	fmt.Fprintf(out, "backfill rate: %s, adaptive %v; shadow reads: %.2g of gets\n", rate, m.Adaptive, m.ShadowSample)
	if v := m.Verify; v != nil {
		verdict := "FAILED"
		if v.Passed {
			verdict = "passed"
		}
		fmt.Fprintf(out, "last verify: %s at checkpoint %d (%s by %s): %d compared, %d matched, %d missing, %d extra, %d differing\n",
			verdict, v.Checkpoint, v.At.Local().Format(time.DateTime), orDash(v.By), v.Compared, v.Matched, v.Missing, v.Extra, v.Differing)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tFROM\tTO\tBY\tNOTE")
	for _, t := range m.History {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.At.Local().Format(time.DateTime), orDash(string(t.From)), t.To, orDash(t.By), orDash(t.Note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if len(n.Targets) == 0 {
		fmt.Fprintln(out, "targets: not served by the Prism that answered")
		return nil
	}
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBACKEND\tROLE\tSTATE\tCHECKPOINT\tSTREAM LAST\tLAG\tERROR")
	var shadow map[string]int64
	failing := false
	for _, t := range n.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Target, orDash(t.Backend), t.Role, t.State, t.Checkpoint, t.StreamLast, t.Lag, orDash(t.Error))
		if t.ShadowReads != nil {
			shadow = t.ShadowReads
		}
		failing = failing || t.Error != ""
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failing && m.State.Backfilling() {
		fmt.Fprintf(out, "\nthe new target does not start (ERROR above): fix that and it is retried, or abandon the migration with prism migrate rollback %s\n", n.Namespace.Name)
	}
	if shadow != nil {
		fmt.Fprintf(out, "\nshadow reads (this process, since it started): %d matched, %d MISMATCHED, %d skipped (changed between the reads), %d dropped, %d failed\n",
			shadow["match"], shadow["mismatch"], shadow["skipped"], shadow["dropped"], shadow["error"])
	}
	return nil
}

// MigrationAdvice says what the operator of namespace name runs after a
// migration in state, given whether its last verify passed: the next step
// that status output shows (NextMigrationStep words the refusals).
func MigrationAdvice(state MigrationState, verified bool, name string) string {
	switch {
	case state == MigrationPlanned || state == MigrationBackfilling:
		return "wait for the backfill: prism migrate status " + name + " --watch (a new target that does not start: prism migrate rollback " + name + ")"
	case state == MigrationShadowing:
		return "prism migrate verify " + name + " (after a failed one: find why the targets differ, e.g. in the shadow read mismatches, and verify again; or roll back)"
	case state == MigrationVerified:
		return "prism migrate cutover " + name
	case state == MigrationCutOver && !verified:
		return "prism migrate rollback " + name + ": the last verify failed"
	case state == MigrationCutOver:
		return "prism migrate finalize " + name + " (or rollback)"
	}
	return "nothing: the migration ended"
}

// WriteText writes the namespaces as prism ns list shows them, one row each.
func (l AdminListReply) WriteText(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tABSTRACTION\tBACKEND\tCONSISTENCY\tREVISION\tAPPLIED\tBY\tSTATE\tLAG")
	for _, n := range l.Namespaces {
		state, lag := targetSummary(n.Targets)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", n.Namespace.Name, n.Namespace.Abstraction, n.Backend,
			n.Namespace.Consistency, n.Revision, n.AppliedAt.Local().Format(time.DateTime), orDash(n.AppliedBy), state, lag)
	}
	return tw.Flush()
}

// WriteText writes the revisions as prism ns history shows them, oldest
// first, each with what it changed from the one before.
func (h AdminHistoryReply) WriteText(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tAT\tBY\tCHANGES")
	var prev *Registered
	for _, r := range h.Revisions {
		at := r.At.Local().Format(time.DateTime)
		if r.Entry == nil {
			fmt.Fprintf(tw, "%d\t%s\t-\tdeleted\n", r.Revision, at)
			prev = nil
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, at, orDash(r.Entry.AppliedBy), DescribeChange(prev, r.Entry))
		prev = r.Entry
	}
	return tw.Flush()
}

// WriteYAML writes the namespace's declaration alone, as a file prism
// apply -f accepts.
func (n AdminNamespace) WriteYAML(out io.Writer) error {
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	if err := enc.Encode(n.Namespace); err != nil {
		return err
	}
	return enc.Close()
}

// PlanFile prints the plan of the namespace file path for cluster, as
// prism plan --offline does: for people, or with asJSON the plan report
// as JSON. Errors: the file's (LoadNamespaceFile) and Derive's.
func PlanFile(out io.Writer, path string, cluster Cluster, asJSON bool) error {
	ns, err := LoadNamespaceFile(path)
	if err != nil {
		return err
	}
	p, err := Derive(ns, cluster)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(p.Report())
	}
	fmt.Fprintf(out, "namespace %s (durability %s)\n\n", p.Namespace, p.Durability)
	return p.Report().WriteText(out)
}
