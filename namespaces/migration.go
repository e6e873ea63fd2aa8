package namespaces

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prism-data/prism/status"
)

// Target is one projection of a namespace: a backend the namespace's
// stream is projected into. Its durable consumer is
// subjects.Consumer(Name); where it keeps its data follows from the
// namespace and Name (docs/migration.md).
type Target struct {
	// Name names the target: 1 to 32 lower-case letters, digits, '-' and
	// '_', starting with a letter. A namespace's first target is named
	// after its backend.
	Name string `json:"name" yaml:"name"`
	// Backend is one of Backends.
	Backend string `json:"backend" yaml:"backend"`
	// Postgres configures a "postgres" target; empty for the others.
	Postgres PostgresConfig `json:"postgres,omitzero" yaml:"postgres,omitempty"`
}

var targetNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// migrationBackends are the backends a keyvalue namespace can move to.
var migrationBackends = []string{"sqlite", "postgres", "natskv"}

// validate reports the first thing wrong with t as a target of a namespace
// of abstraction abs.
func (t Target) validate(abs string) error {
	if !targetNameRE.MatchString(t.Name) {
		return fmt.Errorf("target name %q: use 1 to 32 lower-case letters, digits, '-' and '_', starting with a letter", t.Name)
	}
	// Only keyvalue, entity and graph targets can be verified, and a
	// cutover needs a passed verify.
	switch {
	case abs == AbstractionEntity:
		if !slices.Contains(EntityBackends, t.Backend) {
			return fmt.Errorf("backend %q cannot serve an entity namespace; use one of %s", t.Backend, strings.Join(EntityBackends, ", "))
		}
	case abs == AbstractionGraph:
		if !slices.Contains(GraphBackends, t.Backend) {
			return fmt.Errorf("backend %q cannot serve a graph namespace; use one of %s", t.Backend, strings.Join(GraphBackends, ", "))
		}
	case abs != AbstractionKeyValue:
		return fmt.Errorf("%s namespaces cannot be migrated yet (verify compares keyvalue, entity and graph targets only); rebuild one elsewhere with prism replay", abs)
	case !slices.Contains(migrationBackends, t.Backend):
		return fmt.Errorf("backend %q cannot serve a keyvalue namespace; use one of %s", t.Backend, strings.Join(migrationBackends, ", "))
	}
	if t.Backend == "natskv" && t.Name != "natskv" {
		return fmt.Errorf("a natskv target must be named natskv (one KV bucket per namespace)")
	}
	if t.Backend != "postgres" && t.Postgres != (PostgresConfig{}) {
		return fmt.Errorf("target %s: a postgres section needs backend postgres, not %q", t.Name, t.Backend)
	}
	if dsnHasPassword(t.Postgres.DSN) {
		return fmt.Errorf("target %s: postgres.dsn holds a password; the registry is readable, so give it in PGPASSWORD or a .pgpass file", t.Name)
	}
	return nil
}

// PrimaryTarget is the target that serves r's reads outside a migration:
// Primary once a migration finalized, else the target named after r's
// backend.
func (r Registered) PrimaryTarget() Target {
	if r.Primary.Name != "" {
		return r.Primary
	}
	return Target{Name: r.Backend, Backend: r.Backend, Postgres: r.Namespace.Postgres}
}

// MigrationState is where a migration stands.
type MigrationState string

// The states of a migration, in the order they are reached. A migration
// moves forward one state at a time; RolledBack and Finalized end it.
const (
	// MigrationPlanned: recorded; no process has started the new target.
	MigrationPlanned MigrationState = "planned"
	// MigrationBackfilling: the new target's projector replays the stream
	// from its start (throttled) and is not caught up yet.
	MigrationBackfilling MigrationState = "backfilling"
	// MigrationShadowing: the new target is caught up and follows the live
	// tail beside the primary; sampled reads are compared against it.
	MigrationShadowing MigrationState = "shadowing"
	// MigrationVerified: a verify found the two targets equal at one
	// checkpoint. Strong writes now wait for both targets.
	MigrationVerified MigrationState = "verified"
	// MigrationCutOver: reads are served by the new target; the old one
	// keeps projecting as a shadow, ready for a rollback.
	MigrationCutOver MigrationState = "cutover"
	// MigrationFinalized: the new target is the namespace's primary; the
	// old target's projector is stopped and its data kept until the
	// operator removes it.
	MigrationFinalized MigrationState = "finalized"
	// MigrationRolledBack: abandoned before cut over; the new target's
	// projector is stopped and its data kept.
	MigrationRolledBack MigrationState = "rolled-back"
)

// Active reports whether s is a state of a migration in progress.
func (s MigrationState) Active() bool {
	return s != "" && s != MigrationFinalized && s != MigrationRolledBack
}

// Backfilling reports whether s is a state in which the new target is
// still being filled by replay (planned or backfilling).
func (s MigrationState) Backfilling() bool {
	return s == MigrationPlanned || s == MigrationBackfilling
}

// Migration moves a namespace from one target to another (DESIGN.md,
// "Shadow traffic and migration"). It is kept in the namespace's registry
// entry, so every gateway sees a transition at once, and every transition
// is a revision-checked write that either happened or did not: a crash at
// any moment leaves a state the processes resume from.
type Migration struct {
	// From is the primary target when the migration started.
	From Target `json:"from"`
	// To is the new target.
	To Target `json:"to"`
	// State is where it stands.
	State MigrationState `json:"state"`
	// MaxRate caps the backfill in events per second; 0 is no cap.
	MaxRate int `json:"max_rate,omitempty"`
	// Adaptive slows the backfill when the live target falls behind.
	Adaptive bool `json:"adaptive"`
	// ShadowSample is the fraction of keyvalue gets compared against the
	// other target once the new one is caught up.
	ShadowSample float64 `json:"shadow_sample"`
	// Verify is the last verify's result; nil before the first.
	Verify *VerifySummary `json:"verify,omitempty"`
	// History lists the transitions, oldest first.
	History []Transition `json:"history"`
}

// Transition is one recorded change of a migration's state.
type Transition struct {
	From MigrationState `json:"from,omitempty"`
	To   MigrationState `json:"to"`
	At   time.Time      `json:"at"`
	// By is who made it: user@host for the CLI, "prism serve <instance>"
	// for a state a serving process reached.
	By string `json:"by,omitempty"`
	// Note says why, e.g. the verify result.
	Note string `json:"note,omitempty"`
}

// VerifySummary is what a verify found, as recorded in the migration.
type VerifySummary struct {
	At         time.Time `json:"at"`
	By         string    `json:"by,omitempty"`
	Checkpoint uint64    `json:"checkpoint"`
	Compared   int64     `json:"compared"`
	Matched    int64     `json:"matched"`
	Missing    int64     `json:"missing"`
	Extra      int64     `json:"extra"`
	Differing  int64     `json:"differing"`
	Passed     bool      `json:"passed"`
}

// MigrationOptions are the settings of a migration given when it starts.
type MigrationOptions struct {
	// MaxRate caps the backfill in events per second; 0 is no cap.
	MaxRate int
	// Adaptive slows the backfill when the live target falls behind.
	Adaptive bool
	// ShadowSample is the fraction of gets compared against the other
	// target, 0 to 1; 0 means DefaultShadowSample.
	ShadowSample float64
}

// DefaultShadowSample is the fraction of gets a migration compares
// against its other target unless told otherwise.
const DefaultShadowSample = 0.01

// StartMigration records a new migration of namespace name to target to,
// in state MigrationPlanned; the process serving the namespace then starts
// the target. A to.Name of "" is to.Backend.
//
// Errors: status.ErrNamespaceNotFound; status.ErrInvalidArgument for a target that
// cannot serve the namespace, that has the primary's name, or a negative
// rate; status.ErrFailedPrecondition while another migration is in progress;
// status.ErrConflict when the namespace kept changing under it.
func StartMigration(ctx context.Context, reg *Registry, name string, to Target, o MigrationOptions, by string) (Registered, error) {
	if to.Name == "" {
		to.Name = to.Backend
	}
	if o.MaxRate < 0 {
		return Registered{}, status.Invalidf("max rate %d is negative; use 0 for no cap", o.MaxRate)
	}
	if o.ShadowSample < 0 || o.ShadowSample > 1 {
		return Registered{}, status.Invalidf("shadow sample %v is not a fraction between 0 and 1", o.ShadowSample)
	}
	if o.ShadowSample == 0 {
		o.ShadowSample = DefaultShadowSample
	}
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		if err := to.validate(r.Namespace.Abstraction); err != nil {
			return "", status.Invalidf("namespace %s: %v", name, err)
		}
		if m := r.Migration; m != nil && m.State.Active() {
			return "", status.Newf(status.ErrFailedPrecondition.Code, "namespace %s is already migrating to %s (state %s); abandon it first with prism migrate rollback %s, or finish it: %s", name, m.To.Name, m.State, name, NextMigrationStep(name, m.State))
		}
		from := r.PrimaryTarget()
		if to.Name == from.Name {
			return "", status.Invalidf("namespace %s: target %s is the primary target; give the new one another name (--target)", name, to.Name)
		}
		r.Migration = &Migration{From: from, To: to, State: MigrationPlanned, MaxRate: o.MaxRate, Adaptive: o.Adaptive, ShadowSample: o.ShadowSample}
		return fmt.Sprintf("from %s (%s) to %s (%s)", from.Name, from.Backend, to.Name, to.Backend), nil
	})
}

// AdvanceMigration moves namespace name's migration from state from to
// state to, recording by and note. It is how a serving process records
// MigrationBackfilling and MigrationShadowing; operators use the named
// transitions (RecordVerify, Cutover, Rollback, Finalize).
//
// Errors: status.ErrNamespaceNotFound; status.ErrFailedPrecondition when the migration
// is not in state from; status.ErrConflict when the entry kept changing.
func AdvanceMigration(ctx context.Context, reg *Registry, name string, from, to MigrationState, by, note string) (Registered, error) {
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		m, err := migrationIn(r, name, from)
		if err != nil {
			return "", err
		}
		m.State = to
		return note, nil
	})
}

// RecordVerify records the result of a verify of namespace name's
// migration: a passed verify moves it from shadowing (or verified) to
// verified; a failed one moves a verified migration back to shadowing. A
// verify after the cutover leaves the state as it is: a failed one blocks
// Finalize until a rollback. Either way the result is kept. Errors: those
// of AdvanceMigration.
func RecordVerify(ctx context.Context, reg *Registry, name string, v VerifySummary, by string) (Registered, error) {
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		m, err := migrationIn(r, name, MigrationShadowing, MigrationVerified, MigrationCutOver)
		if err != nil {
			return "", err
		}
		m.Verify = &v
		note := fmt.Sprintf("verify failed at checkpoint %d: %d missing, %d extra, %d differing of %d", v.Checkpoint, v.Missing, v.Extra, v.Differing, v.Compared)
		if v.Passed {
			note = fmt.Sprintf("verify passed at checkpoint %d: %d records equal", v.Checkpoint, v.Matched)
		}
		switch {
		case m.State == MigrationCutOver:
		case v.Passed:
			m.State = MigrationVerified
		default:
			m.State = MigrationShadowing
		}
		return note, nil
	})
}

// Cutover moves namespace name's reads to the new target: every gateway
// swaps at once when it sees the transition, after the new target caught
// up with the old one. It needs a passed verify. Errors: those of
// AdvanceMigration.
func Cutover(ctx context.Context, reg *Registry, name, by string) (Registered, error) {
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		m, err := migrationIn(r, name, MigrationVerified)
		if err != nil {
			return "", err
		}
		if m.Verify == nil || !m.Verify.Passed {
			return "", status.Newf(status.ErrFailedPrecondition.Code, "namespace %s: the last verify did not pass; run prism migrate verify", name)
		}
		m.State = MigrationCutOver
		return fmt.Sprintf("reads move to %s", m.To.Name), nil
	})
}

// Rollback undoes namespace name's migration: after a cutover, reads go
// back to the old target and the migration returns to shadowing (verify
// again before the next cutover); before one, the migration ends
// (MigrationRolledBack) and the new target stops, keeping its data.
// There is no rollback after Finalize. Errors: those of AdvanceMigration.
func Rollback(ctx context.Context, reg *Registry, name, by string) (Registered, error) {
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		m, err := migrationIn(r, name, MigrationPlanned, MigrationBackfilling, MigrationShadowing, MigrationVerified, MigrationCutOver)
		if err != nil {
			return "", err
		}
		if m.State == MigrationCutOver {
			m.State = MigrationShadowing
			return fmt.Sprintf("reads back on %s; %s keeps following as a shadow", m.From.Name, m.To.Name), nil
		}
		m.State = MigrationRolledBack
		return fmt.Sprintf("%s stopped; its data is kept", m.To.Name), nil
	})
}

// Finalize ends namespace name's migration after a cutover: the new target
// becomes the namespace's primary (and its backend the namespace's
// backend), the old target's projector stops and its data is kept. No
// rollback is possible after it, so it needs the last verify (which a
// verify after the cutover replaces) to have passed. Errors: those of
// AdvanceMigration.
func Finalize(ctx context.Context, reg *Registry, name, by string) (Registered, error) {
	return transition(ctx, reg, name, by, func(r *Registered) (string, error) {
		m, err := migrationIn(r, name, MigrationCutOver)
		if err != nil {
			return "", err
		}
		if m.Verify == nil || !m.Verify.Passed {
			return "", status.Newf(status.ErrFailedPrecondition.Code, "namespace %s: the last verify did not pass; roll back (prism migrate rollback) and find out why", name)
		}
		m.State = MigrationFinalized
		r.Primary = m.To
		r.Backend = m.To.Backend
		r.Namespace.Backend = m.To.Backend
		r.Namespace.Postgres = m.To.Postgres
		return fmt.Sprintf("%s is the primary; %s stopped, its data kept", m.To.Name, m.From.Name), nil
	})
}

// migrationIn returns r's migration if it is in one of states; otherwise
// status.ErrFailedPrecondition naming the state it is in.
func migrationIn(r *Registered, name string, states ...MigrationState) (*Migration, error) {
	m := r.Migration
	if m == nil {
		return nil, status.Newf(status.ErrFailedPrecondition.Code, "namespace %s has no migration; start one with prism migrate start", name)
	}
	if !slices.Contains(states, m.State) {
		want := make([]string, len(states))
		for i, s := range states {
			want[i] = string(s)
		}
		return nil, status.Newf(status.ErrFailedPrecondition.Code, "namespace %s: the migration to %s is %s, not %s; %s", name, m.To.Name, m.State, strings.Join(want, " or "), NextMigrationStep(name, m.State))
	}
	return m, nil
}

// NextMigrationStep says, as an instruction to the operator, what moves a
// migration of namespace name in state s forward: the prism command to run
// next, or what to wait for.
func NextMigrationStep(name string, s MigrationState) string {
	switch s {
	case MigrationPlanned, MigrationBackfilling:
		return fmt.Sprintf("wait until the new target caught up and the migration is shadowing (prism migrate status %s); if the new target does not start (status shows its error), abandon the migration with prism migrate rollback %s", name, name)
	case MigrationShadowing:
		return fmt.Sprintf("run prism migrate verify %s", name)
	case MigrationVerified:
		return fmt.Sprintf("run prism migrate cutover %s (or prism migrate rollback %s)", name, name)
	case MigrationCutOver:
		return fmt.Sprintf("run prism migrate finalize %s (or prism migrate rollback %s)", name, name)
	default:
		return fmt.Sprintf("the migration has ended; start a new one with prism migrate start %s", name)
	}
}

// transitionAttempts bounds how often transition re-reads an entry that
// changed between its read and its write.
const transitionAttempts = 5

// transition applies change to namespace name's registry entry and stores
// it if the entry is still at the revision read, recording the state
// change (with note) in the migration's history. A concurrent change of
// the entry makes it read again and re-check: change decides on the
// latest entry only.
func transition(ctx context.Context, reg *Registry, name, by string, change func(*Registered) (string, error)) (Registered, error) {
	var err error
	for range transitionAttempts {
		var r Registered
		if r, err = reg.Get(ctx, name); err != nil {
			return Registered{}, err
		}
		var before MigrationState
		if r.Migration != nil {
			before = r.Migration.State
			m := *r.Migration
			m.History = slices.Clone(m.History)
			r.Migration = &m
		}
		var note string
		if note, err = change(&r); err != nil {
			return Registered{}, err
		}
		r.Migration.History = append(r.Migration.History, Transition{From: before, To: r.Migration.State, At: time.Now().UTC(), By: by, Note: note})
		var rev uint64
		rev, err = reg.Put(ctx, r)
		if err == nil {
			r.Revision = rev
			return r, nil
		}
		if !errors.Is(err, status.ErrConflict) {
			return Registered{}, err
		}
	}
	return Registered{}, err
}
