package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

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
var Abstractions = []string{AbstractionKeyValue, AbstractionTimeSeries, AbstractionLog}

// Duration is a time.Duration that YAML spells as a Go duration string
// ("720h", "90m", "0"). Units of days are not accepted: write 720h, not 30d.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 720h: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration; write it like 720h or 90m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String returns the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// Backends lists the backend names a Namespace may name. The gateway itself
// never talks to a backend; cmd/prism wires a reader per namespace.
var Backends = []string{"sqlite", "postgres", "natskv", "kafka"}

// BackendAuto is the Backend value that lets Derive choose the backend from
// the namespace's needs and the cluster (ADR 007). prism plan resolves it;
// prism serve does not yet, so a namespace it serves names a backend.
const BackendAuto = "auto"

// Owners is a list of owner names, YAML a sequence of strings. It is kept
// comparable (unlike a slice) so that Namespace stays comparable with ==.
type Owners struct{ joined string }

// ownersSep separates names in Owners.joined; YAML scalars of one line
// cannot contain it.
const ownersSep = "\x00"

// NewOwners returns the Owners list of names.
func NewOwners(names ...string) Owners { return Owners{strings.Join(names, ownersSep)} }

// List returns the names, nil for none.
func (o Owners) List() []string {
	if o.joined == "" {
		return nil
	}
	return strings.Split(o.joined, ownersSep)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (o *Owners) UnmarshalYAML(n *yaml.Node) error {
	var names []string
	if err := n.Decode(&names); err != nil {
		return fmt.Errorf("line %d: owners: want a list of names: %w", n.Line, err)
	}
	for _, name := range names {
		if strings.Contains(name, ownersSep) {
			return fmt.Errorf("line %d: owners: %q contains a NUL byte", n.Line, name)
		}
	}
	*o = NewOwners(names...)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (o Owners) MarshalYAML() (any, error) { return o.List(), nil }

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
	WriteRPS int `yaml:"write_rps"`
	// ReadRPS is the peak rate of reads per second.
	ReadRPS int `yaml:"read_rps"`
	// P99Latency is the write latency the application expects at the 99th
	// percentile.
	P99Latency Duration `yaml:"p99_latency"`
	// MaxItemBytes is the size of the largest item (or event) written.
	MaxItemBytes int `yaml:"max_item_bytes"`
	// Retention, for a timeseries namespace, is how long events are kept;
	// it is the namespace's Retention when that is 0, and must equal it
	// otherwise.
	Retention Duration `yaml:"retention"`
	// Durability is one of Durabilities; empty means BestEffort.
	Durability Durability `yaml:"durability"`
	// Ordering is one of Orderings; empty means OrderingPerKey.
	Ordering Ordering `yaml:"ordering"`
}

// PostgresConfig configures a namespace whose backend is "postgres".
type PostgresConfig struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://prism@db:5432/prism. Empty means the one cmd/prism is
	// given (--postgres-dsn or PRISM_POSTGRES_DSN). Keep passwords out of
	// files: use the environment or a .pgpass.
	DSN string `yaml:"dsn"`
}

// Namespace is the declaration of one namespace, as read from YAML.
type Namespace struct {
	// Name is the namespace name (see subjects.ValidateNamespace).
	Name string `yaml:"name"`
	// Abstraction is the data abstraction: one of Abstractions.
	Abstraction string `yaml:"abstraction"`
	// Team is the team that owns the namespace; metadata only.
	Team string `yaml:"team"`
	// Owners are the people or groups to contact about the namespace;
	// metadata only.
	Owners Owners `yaml:"owners"`
	// Backend is the primary target's backend: one of Backends, or
	// BackendAuto to let Derive choose.
	Backend string `yaml:"backend"`
	// Consistency defaults to Eventual when empty.
	Consistency Consistency `yaml:"consistency"`
	// Postgres configures the "postgres" backend; it must be empty for the
	// others.
	Postgres PostgresConfig `yaml:"postgres"`
	// Kafka configures the "kafka" backend; it must be empty for the
	// others.
	Kafka KafkaConfig `yaml:"kafka"`
	// Retention, for a timeseries namespace, is how long events are kept,
	// by event age on the stream (its MaxAge) and in the backend; 0 keeps
	// them forever. It must be 0 for the other abstractions.
	Retention Duration `yaml:"retention"`
	// PublishChanges makes the namespace stream republish every stored
	// event, headers and data, to core NATS at subjects.Changes(ns): a
	// pub/sub fan-out for lightweight listeners. At most once per listener
	// (core NATS); listeners that must not miss a change use a
	// subscription on the stream instead (client.Subscribe).
	PublishChanges bool `yaml:"publish_changes"`
	// Needs is what the application needs; see Derive. Optional.
	Needs Needs `yaml:"needs"`
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
	if err := n.validateNeeds(); err != nil {
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
		if n.Retention != 0 && n.Retention != nd.Retention {
			return fmt.Errorf("needs.retention: %v differs from retention %v; state it once", nd.Retention, n.Retention)
		}
		if time.Duration(nd.Retention) < DuplicateWindow {
			return fmt.Errorf("needs.retention: %v is shorter than the duplicate window %v; keep events at least that long", nd.Retention, DuplicateWindow)
		}
	}
	if nd.Durability != "" && !slices.Contains(Durabilities, nd.Durability) {
		return fmt.Errorf("needs.durability: %q is not one of %s", nd.Durability, joinNames(Durabilities))
	}
	if nd.Ordering != "" && !slices.Contains(Orderings, nd.Ordering) {
		return fmt.Errorf("needs.ordering: %q is not one of %s", nd.Ordering, joinNames(Orderings))
	}
	return nil
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// withDefaults returns n with an empty Consistency set to Eventual.
func (n Namespace) withDefaults() Namespace {
	if n.Consistency == "" {
		n.Consistency = Eventual
	}
	return n
}

// LoadNamespaces reads every *.yaml and *.yml file of dir, in name order,
// each holding exactly one namespace. Decoding is strict: an unknown field,
// a second document in a file, an invalid namespace or a name declared twice
// is an error that names the file. Consistency defaults to Eventual.
func LoadNamespaces(dir string) ([]Namespace, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load namespaces: %w", err)
	}
	var out []Namespace
	seen := make(map[string]string) // name -> file
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		ns, err := loadNamespaceFile(path)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[ns.Name]; dup {
			return nil, fmt.Errorf("load namespaces: %s: namespace %s is already declared in %s", path, ns.Name, prev)
		}
		seen[ns.Name] = path
		out = append(out, ns)
	}
	return out, nil
}

// LoadNamespaceFile reads the one namespace of the YAML file path, strictly
// and validated like LoadNamespaces.
func LoadNamespaceFile(path string) (Namespace, error) { return loadNamespaceFile(path) }

func loadNamespaceFile(path string) (Namespace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ns Namespace
	if err := dec.Decode(&ns); err != nil {
		if errors.Is(err, io.EOF) {
			return Namespace{}, fmt.Errorf("load namespaces: %s: empty file; declare one namespace", path)
		}
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Namespace{}, fmt.Errorf("load namespaces: %s: more than one YAML document; declare one namespace per file", path)
	}
	if err := ns.Validate(); err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	return ns.withDefaults(), nil
}

// namespaceEntry is a registered namespace with what serves it: reader for
// a keyvalue namespace, tsReader for a timeseries one.
type namespaceEntry struct {
	Namespace
	reader    KeyValueReader
	tsReader  TimeSeriesReader
	logReader LogReader
	applied   AppliedWaiter
}

// registry maps namespace names to their entries. It is safe for concurrent
// use.
type registry struct {
	mu sync.RWMutex
	m  map[string]*namespaceEntry
}

func (r *registry) get(name string) (*namespaceEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	return e, ok
}

func (r *registry) add(e *namespaceEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[e.Name]; dup {
		return fmt.Errorf("gateway: namespace %s is already registered", e.Name)
	}
	if r.m == nil {
		r.m = make(map[string]*namespaceEntry)
	}
	r.m[e.Name] = e
	return nil
}

// AddNamespace registers the keyvalue namespace ns, served by reader r with
// projection progress w. It is safe to call while the gateway runs; requests
// for ns are served from the moment it returns. It returns an error if ns is
// invalid or not a keyvalue namespace (use AddTimeSeriesNamespace for a
// timeseries one), r or w is nil, or a namespace of that name is already
// registered.
func (g *Gateway) AddNamespace(ns Namespace, r KeyValueReader, w AppliedWaiter) error {
	if err := checkAdd(ns, AbstractionKeyValue, "AddTimeSeriesNamespace"); err != nil {
		return err
	}
	if r == nil || w == nil {
		return fmt.Errorf("gateway: namespace %s needs a reader and an applied waiter", ns.Name)
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.withDefaults(), reader: r, applied: w})
}

// AddTimeSeriesNamespace registers the timeseries namespace ns, served by
// reader r with projection progress w, like AddNamespace. It returns an
// error if ns is invalid or not a timeseries namespace, r or w is nil, or a
// namespace of that name is already registered.
func (g *Gateway) AddTimeSeriesNamespace(ns Namespace, r TimeSeriesReader, w AppliedWaiter) error {
	if err := checkAdd(ns, AbstractionTimeSeries, "AddNamespace"); err != nil {
		return err
	}
	if r == nil || w == nil {
		return fmt.Errorf("gateway: namespace %s needs a reader and an applied waiter", ns.Name)
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.withDefaults(), tsReader: r, applied: w})
}

// checkAdd validates ns and checks that it has abstraction want; other names
// the method that registers the other abstraction.
func checkAdd(ns Namespace, want, other string) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if ns.Abstraction != want {
		return fmt.Errorf("gateway: namespace %s is a %s namespace, not %s; register it with %s", ns.Name, ns.Abstraction, want, other)
	}
	return nil
}
