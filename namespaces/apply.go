package namespaces

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/status"
)

// PlanReport is a Plan as the admin API and prism plan --json show it.
type PlanReport struct {
	Namespace  string    `json:"namespace"`
	Durability string    `json:"durability"`
	Settings   []Setting `json:"settings"`
	Guarantee  string    `json:"guarantee"`
	Warnings   []string  `json:"warnings"`
}

// Report returns p as a PlanReport.
func (p Plan) Report() PlanReport {
	r := PlanReport{Namespace: p.Namespace, Durability: string(p.Durability), Settings: p.Settings(), Guarantee: p.Guarantee, Warnings: p.Warnings}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	return r
}

// ValueString is Value as a plan prints it. A whole number is printed as
// an integer whether it is an int (a plan Derive made) or a float64 (one
// decoded from the admin API's JSON), so that both print 1048576, not
// 1.048576e+06.
func (s Setting) ValueString() string {
	if f, ok := s.Value.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(s.Value)
}

// How a Change takes effect.
const (
	// EffectLive: running gateways and projectors pick it up, no restart.
	EffectLive = "live"
	// EffectMigration: it needs the data moved (another backend, stream
	// storage or abstraction, fewer partitions); apply refuses it.
	EffectMigration = "migration"
)

// Change is one difference between the live declaration of a namespace (or
// its derived settings) and a new one.
type Change struct {
	// Field is the spec field ("consistency", "needs.write_rps") or derived
	// setting ("settings.replicas").
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Effect is EffectLive or EffectMigration.
	Effect string `json:"effect"`
	// Reason is why a derived setting has its new value, or why a change
	// needs a migration.
	Reason string `json:"reason,omitempty"`
}

// The actions of an ApplyResult.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
)

// ApplyResult is what planning or applying a namespace found.
type ApplyResult struct {
	// Action is ActionCreate, ActionUpdate or ActionUnchanged.
	Action string `json:"action"`
	// Revision is the live revision planned against (0: none) or, after an
	// apply, the stored revision.
	Revision uint64 `json:"revision"`
	// Backend is the primary backend, BackendAuto resolved.
	Backend string `json:"backend"`
	// Plan is the derived settings.
	Plan PlanReport `json:"plan"`
	// Changes are the differences from the live declaration, empty for a
	// create.
	Changes []Change `json:"changes"`
	// Blocked says why apply refuses the change (a migration is needed);
	// empty when it can be applied.
	Blocked string `json:"blocked,omitempty"`
	// Access is the access policy the namespace is applied with (when
	// authentication is on; empty: global admins only).
	Access auth.Policy `json:"access"`
}

// PlanApply derives the settings of ns on cluster c and compares them, and
// ns, with what reg holds: what `prism apply` would do. It changes nothing.
//
// Errors: status.ErrInvalidArgument for an invalid ns, status.ErrFailedPrecondition when c
// cannot give what ns needs (wrapping ErrCannotProvide), status.ErrUnavailable when
// the registry cannot be read.
func PlanApply(ctx context.Context, reg *Registry, c Cluster, ns Namespace) (ApplyResult, error) {
	res, _, err := planApply(ctx, reg, c, ns)
	return res, err
}

// planApply is PlanApply, also returning the live entry (zero when ns is
// new).
func planApply(ctx context.Context, reg *Registry, c Cluster, ns Namespace) (ApplyResult, Registered, error) {
	if err := ns.Validate(); err != nil {
		return ApplyResult{}, Registered{}, status.Invalidf("%v", err)
	}
	ns = ns.WithDefaults()
	p, err := Derive(ns, c)
	if err != nil {
		return ApplyResult{}, Registered{}, planError(err)
	}
	res := ApplyResult{Action: ActionCreate, Backend: p.Backend.Value, Plan: p.Report(), Changes: []Change{}, Access: ns.Access.Policy()}
	live, err := reg.Get(ctx, ns.Name)
	if errors.Is(err, status.ErrNamespaceNotFound) {
		return res, Registered{}, nil
	}
	if err != nil {
		return ApplyResult{}, Registered{}, err
	}
	res.Revision = live.Revision
	livePlan, err := Derive(live.Namespace, c)
	if err != nil {
		// The live namespace no longer fits the cluster (e.g. restarted
		// without sync_always): compare the specs only.
		livePlan = Plan{}
	}
	livePlan.Backend.Value = live.Backend
	res.Changes = Diff(live.Namespace, livePlan, ns, p)
	res.Action = ActionUpdate
	if len(res.Changes) == 0 {
		res.Action = ActionUnchanged
	}
	var blocked []string
	for _, ch := range res.Changes {
		if ch.Effect == EffectMigration {
			blocked = append(blocked, fmt.Sprintf("%s %s → %s (%s)", ch.Field, ch.From, ch.To, ch.Reason))
		}
	}
	if len(blocked) > 0 {
		res.Blocked = "needs a migration, which apply does not do: " + strings.Join(blocked, "; ") + ". Move the data with prism migrate start (docs/migration.md), or create a namespace under a new name"
		if m := live.Migration; m != nil && m.State == MigrationFinalized && live.Backend != ns.Backend {
			res.Blocked = fmt.Sprintf("the namespace was migrated to %s (%s) at %s: update backend (and its settings) in the namespace's file to %s; %s",
				m.To.Name, m.To.Backend, m.History[len(m.History)-1].At.Format(time.RFC3339), live.Backend, res.Blocked)
		}
	}
	return res, live, nil
}

// Apply validates ns, derives its settings on cluster c and stores it in
// reg if revision is its live revision (0: it must not exist yet), saying
// by whom. An unchanged namespace is not stored again.
//
// Errors: those of PlanApply; status.ErrConflict when the namespace is not at
// revision (someone else applied or deleted it since it was planned);
// status.ErrFailedPrecondition when the change needs a migration. Nothing is
// stored on error.
func Apply(ctx context.Context, reg *Registry, c Cluster, ns Namespace, revision uint64, by string) (ApplyResult, error) {
	res, live, err := planApply(ctx, reg, c, ns)
	if err != nil {
		return ApplyResult{}, err
	}
	if res.Revision != revision {
		return ApplyResult{}, reg.conflict(ctx, ns.Name, revision)
	}
	if res.Blocked != "" {
		return ApplyResult{}, status.Newf(status.ErrFailedPrecondition.Code, "namespace %s: %s", ns.Name, res.Blocked)
	}
	if res.Action == ActionUnchanged {
		return res, nil
	}
	// A migration in progress and the primary target a finished one chose
	// are not part of the declaration: they stay as they are.
	rev, err := reg.Put(ctx, Registered{Namespace: ns, Backend: res.Backend, Revision: revision, AppliedBy: by, Primary: live.Primary, Migration: live.Migration})
	if err != nil {
		return ApplyResult{}, err
	}
	res.Revision = rev
	return res, nil
}

// planError maps an error of Derive to its wire error.
func planError(err error) error {
	if errors.Is(err, ErrCannotProvide) {
		return &status.Error{Code: status.ErrFailedPrecondition.Code, Message: err.Error(), Err: err}
	}
	return status.Invalidf("%v", err)
}

// Diff returns the differences between the live namespace old, with its
// plan oldPlan, and ns with plan p, each saying how it takes effect. Both
// are compared with defaults applied, so a retention moved between the top
// level and needs is no change.
func Diff(old Namespace, oldPlan Plan, ns Namespace, p Plan) []Change {
	old, ns = old.WithDefaults(), ns.WithDefaults()
	out := []Change{}
	add := func(field string, from, to any, effect, reason string) {
		f, t := fmt.Sprint(from), fmt.Sprint(to)
		if f != t {
			out = append(out, Change{Field: field, From: f, To: t, Effect: effect, Reason: reason})
		}
	}
	add("abstraction", old.Abstraction, ns.Abstraction, EffectMigration, "the events and the backend's tables differ per abstraction")
	add("postgres.dsn", old.Postgres.DSN, ns.Postgres.DSN, EffectMigration, "another PostgreSQL server holds none of the data")
	add("kafka.brokers", old.Kafka.Brokers.List(), ns.Kafka.Brokers.List(), EffectMigration, "another Kafka cluster holds none of the records")
	add("kafka.topic", old.Kafka.Topic, ns.Kafka.Topic, EffectMigration, "another topic holds none of the records")
	add("entity.message", old.Entity.Message, ns.Entity.Message, EffectMigration, "the stored records are of the old message")
	add("entity.descriptor_set", digest(old.Entity.DescriptorSet), digest(ns.Entity.DescriptorSet), EffectLive, "new fields take effect for new writes; stored records still decode")
	add("graph.max_depth", old.Graph.MaxDepth, ns.Graph.MaxDepth, EffectLive, "traversals read the new limit at once")
	add("graph.max_results", old.Graph.MaxResults, ns.Graph.MaxResults, EffectLive, "traversals read the new limit at once")
	add("backend", old.Backend, ns.Backend, EffectLive, "")
	add("consistency", old.Consistency, ns.Consistency, EffectLive, "")
	add("retention", old.Retention, ns.Retention, EffectLive, "")
	add("publish_changes", old.PublishChanges, ns.PublishChanges, EffectLive, "")
	add("team", old.Team, ns.Team, EffectLive, "")
	add("owners", old.Owners.List(), ns.Owners.List(), EffectLive, "")
	add("fields", old.Fields.List(), ns.Fields.List(), EffectLive, "")
	add("pii", old.PII.Fields(), ns.PII.Fields(), EffectLive, piiChangeReason(old.PII, ns.PII))
	add("pii_redaction", old.PIIRedaction, ns.PIIRedaction, EffectLive, "")
	for _, perm := range auth.AllPermissions() {
		add("access."+string(perm), old.Access.Policy().Entries(perm), ns.Access.Policy().Entries(perm), EffectLive, "")
	}
	on, nn := old.Needs, ns.Needs
	add("needs.write_rps", on.WriteRPS, nn.WriteRPS, EffectLive, "")
	add("needs.read_rps", on.ReadRPS, nn.ReadRPS, EffectLive, "")
	add("needs.p99_latency", on.P99Latency, nn.P99Latency, EffectLive, "")
	add("needs.max_item_bytes", on.MaxItemBytes, nn.MaxItemBytes, EffectLive, "")
	add("needs.durability", on.Durability, nn.Durability, EffectLive, "")
	add("needs.ordering", on.Ordering, nn.Ordering, EffectLive, "")
	add("limits.principal_share", old.Limits.PrincipalShare, ns.Limits.PrincipalShare, EffectLive, "")
	add("needs.retry_horizon", on.RetryHorizon, nn.RetryHorizon, EffectLive, "the token bucket's TTL changes in place")

	add("settings.backend", oldPlan.Backend.Value, p.Backend.Value, EffectMigration, "the new backend holds none of the data; "+p.Backend.Reason)
	if oldPlan.Namespace == "" {
		return out // the live plan could not be derived
	}
	olds := map[string]Setting{}
	for _, s := range oldPlan.Settings() {
		olds[s.Name] = s
	}
	for _, s := range p.Settings() {
		o := olds[s.Name]
		effect, reason := EffectLive, s.Reason
		switch s.Name {
		case "backend":
			continue // compared above
		case "indexes":
			effect, reason = indexChangeEffect(old, ns)
		case "storage":
			effect, reason = EffectMigration, "JetStream cannot change a stream's storage in place; "+s.Reason
		case "kafka_partitions", "kafka_replication_factor":
			effect, reason = EffectMigration, "Prism creates the Kafka topic once: more partitions re-key records, and replication changes need Kafka's tools; "+s.Reason
		case "partitions":
			if s.Value.(int) < oldPlan.Partitions.Value {
				effect, reason = EffectMigration, "fewer partitions re-key every event; "+s.Reason
			}
		}
		add("settings."+s.Name, o.Value, s.Value, effect, reason)
	}
	return out
}

// piiChangeReason says what a change of the PII fields does to the values
// already stored.
func piiChangeReason(old, ns PIIFields) string {
	var added, removed []string
	for _, f := range ns.List() {
		if _, ok := old.Kind(f); !ok {
			added = append(added, f)
		}
	}
	for _, f := range old.List() {
		if _, ok := ns.Kind(f); !ok {
			removed = append(removed, f)
		}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("new writes of %s are encrypted; values written before stay in plaintext in the stream and the backend until they are written again", strings.Join(added, ", ")))
	}
	if len(removed) > 0 {
		parts = append(parts, fmt.Sprintf("values of %s written while they were PII stay encrypted, and reads return them as stored", strings.Join(removed, ", ")))
	}
	return strings.Join(parts, "; ")
}
