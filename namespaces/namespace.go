package namespaces

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prism-data/prism/subjects"
)

// Consistency is what a namespace promises readers about their writes.
type Consistency string

// The consistency levels (DESIGN.md, "Reads and consistency").
const (
	// Eventual: a write replies once JetStream stored it; reads see the
	// projection as it is.
	Eventual Consistency = "eventual"
	// ReadYourWrites: like Eventual, and a read that passes the seq of a
	// write as min_seq waits until the projection applied it.
	ReadYourWrites Consistency = "read-your-writes"
	// Strong: a write replies only after the primary target applied it, so
	// every read sees every acknowledged write.
	Strong Consistency = "strong"
)

// The data abstractions a Namespace may declare.
const (
	// AbstractionKeyValue: records of items (put, delete, mutate, get, scan).
	AbstractionKeyValue = "keyvalue"
	// AbstractionTimeSeries: series of events (append, range, search).
	AbstractionTimeSeries = "timeseries"
	// AbstractionLog: an append-only log of keyed records (append, fetch).
	AbstractionLog = "log"
)

// Abstractions lists the abstraction names a Namespace may name.
var Abstractions = []string{AbstractionKeyValue, AbstractionTimeSeries, AbstractionLog, AbstractionEntity, AbstractionGraph}

// Backends lists the backend names a Namespace may name. The gateway itself
// never talks to a backend; cmd/prism wires a reader per namespace.
var Backends = []string{"sqlite", "postgres", "natskv", "kafka", "neptune"}

// BackendAuto is the Backend value that lets Derive choose the backend from
// the namespace's needs and the cluster (ADR 007). Apply resolves it once
// and the registry keeps the result (ADR 008).
const BackendAuto = "auto"

// Durability is how much of the deployment's failure an acknowledged write
// must survive (Needs.Durability).
type Durability string

// The durability levels a namespace may need (ADR 007).
const (
	// BestEffort: an acknowledged write survives a process crash; a power
	// loss may lose the last writes.
	BestEffort Durability = "best-effort"
	// Durable: an acknowledged write survives a process crash and a power
	// loss.
	Durable Durability = "durable"
	// Replicated: an acknowledged write survives the loss of a node.
	Replicated Durability = "replicated"
)

// Durabilities lists the durability levels, weakest first.
var Durabilities = []Durability{BestEffort, Durable, Replicated}

// Ordering is the order in which a namespace's events must be applied.
type Ordering string

// The orderings a namespace may need.
const (
	// OrderingPerKey: the events of one record (or series) are applied in
	// the order they were acknowledged.
	OrderingPerKey Ordering = "per-key"
	// OrderingNone: events may be applied in any order.
	OrderingNone Ordering = "none"
)

// Orderings lists the orderings a namespace may need.
var Orderings = []Ordering{OrderingPerKey, OrderingNone}

// Needs is what an application declares it needs from a namespace; Derive
// turns it into settings. Every field is optional: zero means "not stated".
type Needs struct {
	// WriteRPS is the peak rate of writes (events) per second.
	WriteRPS int `yaml:"write_rps,omitempty" json:"write_rps,omitempty"`
	// ReadRPS is the peak rate of reads per second.
	ReadRPS int `yaml:"read_rps,omitempty" json:"read_rps,omitempty"`
	// P99Latency is the write latency the application expects at the 99th
	// percentile.
	P99Latency Duration `yaml:"p99_latency,omitempty" json:"p99_latency,omitzero"`
	// MaxItemBytes is the size of the largest item (or event) written.
	MaxItemBytes int `yaml:"max_item_bytes,omitempty" json:"max_item_bytes,omitempty"`
	// Retention, for a timeseries namespace, is how long events are kept:
	// the namespace's Retention, stated here instead. Stating both is an
	// error; WithDefaults moves it to Namespace.Retention.
	Retention Duration `yaml:"retention,omitempty" json:"retention,omitzero"`
	// Durability is one of Durabilities; empty means BestEffort.
	Durability Durability `yaml:"durability,omitempty" json:"durability,omitempty"`
	// Ordering is one of Orderings; empty means OrderingPerKey.
	Ordering Ordering `yaml:"ordering,omitempty" json:"ordering,omitempty"`
	// RetryHorizon is how long after a write a retry with its idempotency
	// token is still recognised (stored once); empty means
	// DefaultRetryHorizon, JetStream's duplicate window alone.
	RetryHorizon Duration `yaml:"retry_horizon,omitempty" json:"retry_horizon,omitzero"`
}

// PostgresConfig configures a namespace whose backend is "postgres".
type PostgresConfig struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://prism@db:5432/prism. Empty means the one cmd/prism is
	// given (--postgres-dsn or PRISM_POSTGRES_DSN). It must not hold a
	// password: a namespace is stored in the registry and shown by the admin
	// API; give the password in PGPASSWORD or a .pgpass file.
	DSN string `yaml:"dsn,omitempty" json:"dsn,omitempty"`
}

// Namespace is the declaration of one namespace, as read from YAML (or
// JSON, on the admin API). It is comparable with ==.
type Namespace struct {
	// Name is the namespace name (see subjects.ValidateNamespace).
	Name string `yaml:"name" json:"name"`
	// Abstraction is the data abstraction: one of Abstractions.
	Abstraction string `yaml:"abstraction" json:"abstraction"`
	// Team is the team that owns the namespace; metadata only.
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// Owners are the people or groups to contact about the namespace;
	// metadata only.
	Owners Names `yaml:"owners,omitempty" json:"owners,omitzero"`
	// Backend is the primary target's backend: one of Backends, or
	// BackendAuto to let Derive choose.
	Backend string `yaml:"backend" json:"backend"`
	// Consistency defaults to Eventual when empty.
	Consistency Consistency `yaml:"consistency,omitempty" json:"consistency,omitempty"`
	// Postgres configures the "postgres" backend; it must be empty for the
	// others.
	Postgres PostgresConfig `yaml:"postgres,omitempty" json:"postgres,omitzero"`
	// Kafka configures the "kafka" backend; it must be empty for the
	// others.
	Kafka KafkaConfig `yaml:"kafka,omitempty" json:"kafka,omitzero"`
	// Retention, for a timeseries namespace, is how long events are kept,
	// by event age on the stream (its MaxAge) and in the backend; 0 keeps
	// them forever. It must be 0 for the other abstractions.
	Retention Duration `yaml:"retention,omitempty" json:"retention,omitzero"`
	// PublishChanges makes the namespace stream republish every stored
	// event, headers and data, to core NATS at subjects.Changes(ns): a
	// pub/sub fan-out for lightweight listeners. At most once per listener
	// (core NATS); listeners that must not miss a change use a
	// subscription on the stream instead (client.Subscribe).
	PublishChanges bool `yaml:"publish_changes,omitempty" json:"publish_changes,omitempty"`
	// Fields names the fields the namespace's values carry: item keys of a
	// keyvalue namespace, tag names of a timeseries one. Optional; PII
	// fields must be among them, except PIIPayload of a timeseries one.
	Fields Names `yaml:"fields,omitempty" json:"fields,omitzero"`
	// PII names the fields that hold personal data, with their kinds. The
	// gateway encrypts their values before it publishes them, and shows
	// callers without read_pii a mask or nothing (PIIRedaction); see
	// docs/security.md, "PII".
	PII PIIFields `yaml:"pii,omitempty" json:"pii,omitzero"`
	// PIIRedaction is how a PII field is shown to a caller without
	// read_pii: one of Redactions; empty means RedactMask.
	PIIRedaction string `yaml:"pii_redaction,omitempty" json:"pii_redaction,omitempty"`
	// Entity is the schema of an entity namespace (the record message and
	// its descriptors); it must be empty for the other abstractions.
	Entity EntityConfig `yaml:"entity,omitempty" json:"entity,omitzero"`
	// Graph bounds the traversals of a graph namespace; it must be empty
	// for the other abstractions.
	Graph GraphConfig `yaml:"graph,omitempty" json:"graph,omitzero"`
	// Needs is what the application needs; see Derive. Optional.
	Needs Needs `yaml:"needs,omitempty" json:"needs,omitzero"`
	// Limits refines the admission limits the gateway derives from Needs
	// (DeriveLimits, ADR 023). Optional.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitzero"`
	// Access says who may read, write, subscribe to, read the PII of and
	// administer the namespace, when authentication is on
	// (docs/security.md). Empty: global admins only (deny by default).
	Access Access `yaml:"access,omitempty" json:"access,omitzero"`
}

// Validate reports the first thing wrong with n, in a sentence that names the
// field. An empty Consistency is valid and means Eventual.
func (n Namespace) Validate() error {
	if err := subjects.ValidateNamespace(n.Name); err != nil {
		return fmt.Errorf("namespace name: %w", err)
	}
	if !slices.Contains(Abstractions, n.Abstraction) {
		return fmt.Errorf("namespace %s: abstraction %q is not supported; use one of %s", n.Name, n.Abstraction, strings.Join(Abstractions, ", "))
	}
	if !slices.Contains(Backends, n.Backend) && n.Backend != BackendAuto {
		return fmt.Errorf("namespace %s: backend %q is not supported; use one of %s, %s", n.Name, n.Backend, strings.Join(Backends, ", "), BackendAuto)
	}
	if n.Backend != "postgres" && n.Backend != BackendAuto && n.Postgres != (PostgresConfig{}) {
		return fmt.Errorf("namespace %s: a postgres section needs backend: postgres, not %q", n.Name, n.Backend)
	}
	if err := n.validateLog(); err != nil {
		return err
	}
	if err := n.validateEntity(); err != nil {
		return err
	}
	if err := n.validateGraph(); err != nil {
		return err
	}
	if n.Retention < 0 {
		return fmt.Errorf("namespace %s: retention %v is negative; use 0 to keep events forever", n.Name, n.Retention)
	}
	if n.Retention != 0 && n.Abstraction != AbstractionTimeSeries {
		return fmt.Errorf("namespace %s: retention applies to abstraction %s only, not %s; remove it", n.Name, AbstractionTimeSeries, n.Abstraction)
	}
	switch n.Consistency {
	case "", Eventual, ReadYourWrites, Strong:
	default:
		return fmt.Errorf("namespace %s: consistency %q is not one of %q, %q, %q", n.Name, n.Consistency, Eventual, ReadYourWrites, Strong)
	}
	for i, o := range n.Owners.List() {
		if strings.TrimSpace(o) == "" {
			return fmt.Errorf("namespace %s: owners[%d] is empty; name a person or group", n.Name, i)
		}
	}
	if dsnHasPassword(n.Postgres.DSN) {
		return fmt.Errorf("namespace %s: postgres.dsn holds a password; namespaces are stored in the registry and shown by the admin API, so give the password in PGPASSWORD or a .pgpass file", n.Name)
	}
	if err := n.Access.Policy().Validate(); err != nil {
		return fmt.Errorf("namespace %s: access: %w", n.Name, err)
	}
	if err := n.validateFields(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	if err := n.validateNeeds(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	if err := n.validateLimits(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return nil
}

// validateNeeds reports the first thing wrong with n.Needs, naming the
// field path (needs.…) and the allowed values.
func (n Namespace) validateNeeds() error {
	nd := n.Needs
	for _, f := range []struct {
		path string
		v    int
	}{{"write_rps", nd.WriteRPS}, {"read_rps", nd.ReadRPS}, {"max_item_bytes", nd.MaxItemBytes}} {
		if f.v < 0 {
			return fmt.Errorf("needs.%s: %d is negative; use 0 (or leave it out) when unknown", f.path, f.v)
		}
	}
	if nd.P99Latency < 0 {
		return fmt.Errorf("needs.p99_latency: %v is negative", nd.P99Latency)
	}
	if nd.Retention < 0 {
		return fmt.Errorf("needs.retention: %v is negative; use 0 to keep events forever", nd.Retention)
	}
	if nd.Retention != 0 {
		if n.Abstraction != AbstractionTimeSeries {
			return fmt.Errorf("needs.retention: applies to abstraction %s only, not %s; remove it", AbstractionTimeSeries, n.Abstraction)
		}
		switch {
		case n.Retention != 0 && n.Retention != nd.Retention:
			return fmt.Errorf("needs.retention: %v differs from retention %v; state it once", nd.Retention, n.Retention)
		case n.Retention != 0:
			return fmt.Errorf("needs.retention: %v is stated at the top level too (retention); state it once, in either place", nd.Retention)
		}
		if time.Duration(nd.Retention) < DuplicateWindow {
			return fmt.Errorf("needs.retention: %v is shorter than the duplicate window %v; keep events at least that long", nd.Retention, DuplicateWindow)
		}
	}
	if h := time.Duration(nd.RetryHorizon); h < 0 || h > MaxRetryHorizon {
		return fmt.Errorf("needs.retry_horizon: %v is outside 0 to %v", h, MaxRetryHorizon)
	}
	if nd.Durability != "" && !slices.Contains(Durabilities, nd.Durability) {
		return fmt.Errorf("needs.durability: %q is not one of %s", nd.Durability, joinNames(Durabilities))
	}
	if nd.Ordering != "" && !slices.Contains(Orderings, nd.Ordering) {
		return fmt.Errorf("needs.ordering: %q is not one of %s", nd.Ordering, joinNames(Orderings))
	}
	return nil
}

// validateFields checks that fields are non-empty and distinct and that
// every PII field is one of them.
func (n Namespace) validateFields() error {
	fields := n.Fields.List()
	for i, f := range fields {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("fields[%d] is empty; name the field", i)
		}
		if slices.Index(fields, f) != i {
			return fmt.Errorf("fields[%d]: %q is listed twice", i, f)
		}
	}
	if n.PIIRedaction != "" && !slices.Contains(Redactions, n.PIIRedaction) {
		return fmt.Errorf("pii_redaction: %q is not one of %s", n.PIIRedaction, strings.Join(Redactions, ", "))
	}
	if n.PIIRedaction != "" && n.PII.IsZero() {
		return fmt.Errorf("pii_redaction: set, but the namespace declares no pii fields")
	}
	if !n.PII.IsZero() && n.Abstraction == AbstractionLog {
		return fmt.Errorf("pii: PII fields are supported on abstractions %s and %s; %s is not supported", AbstractionKeyValue, AbstractionTimeSeries, n.Abstraction)
	}
	if n.Abstraction == AbstractionTimeSeries {
		if err := n.validateTimeSeriesPII(fields); err != nil {
			return err
		}
	}
	for i, f := range n.PII.List() {
		if f == PIIPayload && n.Abstraction == AbstractionTimeSeries {
			continue // the event payload, not a tag
		}
		if !slices.Contains(fields, f) {
			if len(fields) == 0 {
				return fmt.Errorf("pii[%d]: %q is not a declared field; declare the namespace's fields in fields", i, f)
			}
			return fmt.Errorf("pii[%d]: %q is not a declared field; fields are %s", i, f, strings.Join(fields, ", "))
		}
	}
	return nil
}

// dsnHasPassword reports whether a PostgreSQL connection string, URL
// (postgres://user:pw@host) or keyword/value (password=pw) form, holds a
// password.
func dsnHasPassword(dsn string) bool {
	if dsn == "" {
		return false
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, kv := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return false
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// WithDefaults returns n with an empty Consistency set to Eventual and a
// retention stated under needs moved to the top level, where Prism keeps
// it: the stream's max age, the backend's sweep and a plan's diff all read
// Retention.
func (n Namespace) WithDefaults() Namespace {
	if n.Consistency == "" {
		n.Consistency = Eventual
	}
	if r := n.Needs.Retention; r != 0 && (n.Retention == 0 || n.Retention == r) {
		n.Retention, n.Needs.Retention = r, 0
	}
	return n
}
