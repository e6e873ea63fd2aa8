package namespaces

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrCannotProvide is returned (wrapped) by Derive when the cluster cannot
// give a namespace what its needs ask for. The message says what is missing.
var ErrCannotProvide = errors.New("cannot provide")

// Cluster describes the deployment a namespace is planned for.
type Cluster struct {
	// Nodes is the number of JetStream servers; at least 1.
	Nodes int
	// SyncAlways is true when JetStream fsyncs every write before
	// acknowledging it (prism serve --sync-always; the server's
	// sync_always, which applies to every stream of the server).
	SyncAlways bool
	// Postgres is true when a PostgreSQL server is available to Prism.
	Postgres bool
	// MaxPayload is the largest message the NATS servers accept; 0 means
	// the NATS default, DefaultMaxPayload.
	MaxPayload int
}

// DefaultMaxPayload is the NATS server's default max_payload (1 MiB).
const DefaultMaxPayload = 1 << 20

// Measured rates and limits the rules of Derive use (ADR 007,
// docs/performance.md). A partition's rate is half the lower end of the
// rate a projector was measured catching up at, so a projector that fell
// behind still gains on live traffic as fast as the backlog grew.
const (
	// PartitionRateSQLiteKeyValue: SQLite KeyValue projector measured at
	// 106k–167k events/s.
	PartitionRateSQLiteKeyValue = 53_000
	// PartitionRatePostgresKeyValue: PostgreSQL KeyValue projector measured
	// at 89k–91k events/s (schema version 3, ADR 011).
	PartitionRatePostgresKeyValue = 44_000
	// PartitionRateSQLiteTimeSeries: SQLite TimeSeries projector measured at
	// 30k–32k events/s.
	PartitionRateSQLiteTimeSeries = 15_000
	// PartitionRatePostgresTimeSeries: PostgreSQL TimeSeries projector
	// measured at ≈ 28k events/s.
	PartitionRatePostgresTimeSeries = 14_000
	// PartitionRateNATSKV: natskv KeyValue projector measured at 35k–36k
	// events/s.
	PartitionRateNATSKV = 17_500

	// NodeWriteRate is the lower end of the acknowledged writes per second
	// one node served end to end (2 vCPUs, 64 in flight: 17.7k–22.9k).
	NodeWriteRate = 17_700
	// MeasuredPutP99 is the p99 of an acknowledged put on an unloaded node
	// (open loop at 2,000 puts/s).
	MeasuredPutP99 = 3400 * time.Microsecond
	// MeasuredVisibleP99 is the p99 from a put to its visibility in reads
	// (e2e, 64 in flight): the floor of a strong write.
	MeasuredVisibleP99 = 16 * time.Millisecond

	// SQLiteMaxBytes is the data size beyond which auto moves a namespace
	// from one SQLite file to PostgreSQL.
	SQLiteMaxBytes = 64 << 30
	// NATSKVMaxItemBytes is the largest item natskv is planned for; larger
	// records belong in SQLite or PostgreSQL (ADR 005).
	NATSKVMaxItemBytes = 64 << 10
	// MemoryMaxRetention is the longest retention a best-effort timeseries
	// stream may be kept in memory for.
	MemoryMaxRetention = time.Hour
	// assumedItemBytes sizes data when max_item_bytes is not stated.
	assumedItemBytes = 1 << 10
)

// Derived is one derived setting and why it has that value.
type Derived[T any] struct {
	Value  T
	Reason string
}

// Plan is the settings Derive chose for a namespace, each with its reason,
// and the guarantee they give.
type Plan struct {
	// Namespace is the namespace name.
	Namespace string
	// Durability is the durability planned for (BestEffort when unstated).
	Durability Durability
	// Replicas is the stream's replica count.
	Replicas Derived[int]
	// Storage is the stream's storage: "file" or "memory".
	Storage Derived[string]
	// MaxAge is the stream's MaxAge; 0 keeps events forever.
	MaxAge Derived[time.Duration]
	// MaxMsgSize is the stream's largest message in bytes.
	MaxMsgSize Derived[int]
	// DuplicateWindow is the stream's duplicate window.
	DuplicateWindow Derived[time.Duration]
	// RetryHorizon is how long idempotency tokens are remembered (ADR 025).
	RetryHorizon Derived[time.Duration]
	// Partitions is how many partitions write_rps needs; always 1 today.
	Partitions Derived[int]
	// ProjectorParallelism is how many projectors apply the namespace.
	ProjectorParallelism Derived[int]
	// BatchSize is the projector's batch size.
	BatchSize Derived[int]
	// ReadCache says whether reads should be cached in the gateway.
	ReadCache Derived[bool]
	// ReadCacheEntries is the cache size in records; 0 when off.
	ReadCacheEntries Derived[int]
	// Backend is the primary backend (auto resolved).
	Backend Derived[string]
	// Kafka is the topic settings when Backend is kafka (DeriveKafkaTopic);
	// zero otherwise.
	Kafka KafkaTopic
	// Indexes lists an entity namespace's primary key and secondary
	// indexes, from its message's (prism.index) options; empty otherwise.
	Indexes Derived[string]
	// GraphMaxDepth and GraphMaxResults bound a graph namespace's
	// traversals; zero otherwise.
	GraphMaxDepth, GraphMaxResults Derived[int]
	// Limits are the gateway's admission limits (DeriveLimits, ADR 023).
	Limits AdmissionLimits
	// Guarantee says in words what an acknowledged write survives.
	Guarantee string
	// Warnings are needs the plan meets only on assumptions worth checking.
	Warnings []string
}

// Setting is one row of a Plan, for printing.
type Setting struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Reason string `json:"reason"`
}

// Settings returns the plan's settings in a fixed order; durations are
// strings such as "2m0s".
func (p Plan) Settings() []Setting {
	out := []Setting{
		{"backend", p.Backend.Value, p.Backend.Reason},
		{"replicas", p.Replicas.Value, p.Replicas.Reason},
		{"storage", p.Storage.Value, p.Storage.Reason},
		{"max_age", p.MaxAge.Value.String(), p.MaxAge.Reason},
		{"max_msg_size", p.MaxMsgSize.Value, p.MaxMsgSize.Reason},
		{"duplicate_window", p.DuplicateWindow.Value.String(), p.DuplicateWindow.Reason},
		{"retry_horizon", p.RetryHorizon.Value.String(), p.RetryHorizon.Reason},
		{"partitions", p.Partitions.Value, p.Partitions.Reason},
		{"projector_parallelism", p.ProjectorParallelism.Value, p.ProjectorParallelism.Reason},
		{"batch_size", p.BatchSize.Value, p.BatchSize.Reason},
		{"read_cache", p.ReadCache.Value, p.ReadCache.Reason},
		{"read_cache_entries", p.ReadCacheEntries.Value, p.ReadCacheEntries.Reason},
		{"write_rate_limit", p.Limits.WriteRate.Value, p.Limits.WriteRate.Reason},
		{"read_rate_limit", p.Limits.ReadRate.Value, p.Limits.ReadRate.Reason},
		{"in_flight_quota", p.Limits.InFlight.Value, p.Limits.InFlight.Reason},
		{"principal_share", p.Limits.PrincipalShare.Value, p.Limits.PrincipalShare.Reason},
	}
	if p.Indexes.Value != "" {
		out = append(out, Setting{"indexes", p.Indexes.Value, p.Indexes.Reason})
	}
	if p.GraphMaxDepth.Value != 0 {
		out = append(out, Setting{"max_depth", p.GraphMaxDepth.Value, p.GraphMaxDepth.Reason},
			Setting{"max_results", p.GraphMaxResults.Value, p.GraphMaxResults.Reason})
	}
	if p.Backend.Value == "kafka" {
		out = append(out,
			Setting{"kafka_partitions", p.Kafka.Partitions.Value, p.Kafka.Partitions.Reason},
			Setting{"kafka_replication_factor", p.Kafka.ReplicationFactor.Value, p.Kafka.ReplicationFactor.Reason})
	}
	return out
}

// Derive turns the needs of ns into the settings that serve them on cluster
// c, each with its reason (rules and measured rates: ADR 007). It is pure:
// it reads nothing and changes nothing.
//
// It returns an error for an invalid ns or c, and an error wrapping
// ErrCannotProvide when c cannot give what ns needs: durable on one node
// without SyncAlways, replicated on fewer than 3 nodes, an item larger than
// the server accepts, more write_rps than one projector applies, or large
// items on natskv.
func Derive(ns Namespace, c Cluster) (Plan, error) {
	if err := ns.Validate(); err != nil {
		return Plan{}, fmt.Errorf("plan: %w", err)
	}
	if c.Nodes < 1 {
		return Plan{}, fmt.Errorf("plan: cluster nodes %d: want at least 1", c.Nodes)
	}
	if c.MaxPayload < 0 {
		return Plan{}, fmt.Errorf("plan: cluster max payload %d is negative", c.MaxPayload)
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	nd := ns.Needs
	p := Plan{Namespace: ns.Name, Durability: nd.Durability}
	if p.Durability == "" {
		p.Durability = BestEffort
	}
	fail := func(format string, args ...any) (Plan, error) {
		return Plan{}, fmt.Errorf("plan %s: %w: %s", ns.Name, ErrCannotProvide, fmt.Sprintf(format, args...))
	}
	retention := time.Duration(ns.Retention)
	if nd.Retention != 0 {
		retention = time.Duration(nd.Retention)
	}

	// Replicas: durability maps only to what the deployment can give.
	switch p.Durability {
	case Replicated:
		if c.Nodes < 3 {
			return fail("durability replicated needs a JetStream cluster of 3 or more nodes; this one has %d", c.Nodes)
		}
		p.Replicas = Derived[int]{3, "durability=replicated: a write is acknowledged once 2 of 3 nodes stored it"}
	case Durable:
		switch {
		case c.SyncAlways:
			p.Replicas = Derived[int]{1, "durability=durable is met by sync_always: every write is fsynced before the ack"}
		case c.Nodes >= 3:
			p.Replicas = Derived[int]{3, "durability=durable without sync_always: 2 of 3 nodes hold a write before the ack, so one node's power loss loses nothing"}
		case c.Nodes == 1:
			return fail("durable needs prism serve --sync-always (JetStream sync_always) on a single node")
		default:
			return fail("durable needs prism serve --sync-always (JetStream sync_always) or a cluster of 3 or more nodes; this one has %d", c.Nodes)
		}
	default:
		p.Replicas = Derived[int]{1, durabilityWhy(nd.Durability) + ": one copy is enough"}
	}

	// Storage: memory only where losing the stream on restart is what was
	// asked for and its size is bounded.
	switch {
	case nd.Durability == BestEffort && ns.Abstraction == AbstractionTimeSeries && retention > 0 && retention <= MemoryMaxRetention:
		p.Storage = Derived[string]{"memory", fmt.Sprintf("durability=best-effort timeseries with retention %v ≤ %v: memory is bounded and a restart may drop the stream", retention, MemoryMaxRetention)}
	case nd.Durability == BestEffort:
		p.Storage = Derived[string]{"file", "best-effort, but memory only for timeseries with retention ≤ 1h: a keyvalue stream is the records' history and must outlive a restart"}
	case nd.Durability == "":
		p.Storage = Derived[string]{"file", durabilityWhy(nd.Durability) + ": the stream must outlive a restart (state durability: best-effort to allow memory)"}
	default:
		p.Storage = Derived[string]{"file", fmt.Sprintf("durability=%s: the stream must outlive a restart", p.Durability)}
	}

	// Max age.
	switch {
	case ns.Abstraction != AbstractionTimeSeries:
		p.MaxAge = Derived[time.Duration]{0, ns.Abstraction + ": the stream is the records' history; it is kept"}
	case retention == 0:
		p.MaxAge = Derived[time.Duration]{0, "timeseries without retention: events are kept forever"}
	default:
		p.MaxAge = Derived[time.Duration]{retention, fmt.Sprintf("retention=%v", retention)}
	}

	// Max message size: one event carries every item of a put (or a
	// mutate's items), so the stream keeps the gateway's event limit and the
	// item need is only checked against it and the server's max payload.
	// A KeyValue item above the event limit is uploaded in parts and the
	// event carries a reference (ADR 025); other abstractions' items are
	// bounded by one event.
	envelope := MaxStreamMsgSize - MaxEventBytes
	chunked := ns.Abstraction == AbstractionKeyValue && nd.MaxItemBytes > MaxEventBytes
	switch {
	case chunked && nd.MaxItemBytes > MaxChunkedValueBytes:
		return fail("max_item_bytes %d is above the largest value uploaded in parts, %d bytes; split the item", nd.MaxItemBytes, MaxChunkedValueBytes)
	case chunked:
	case nd.MaxItemBytes > MaxEventBytes:
		return fail("max_item_bytes %d is above the gateway's event limit of %d bytes; split the item", nd.MaxItemBytes, MaxEventBytes)
	case nd.MaxItemBytes+envelope > c.MaxPayload:
		return fail("max_item_bytes %d plus %d bytes of envelope is above the server's max payload of %d bytes; raise max_payload or split the item", nd.MaxItemBytes, envelope, c.MaxPayload)
	}
	size := min(MaxStreamMsgSize, c.MaxPayload)
	why := "the gateway's event limit plus envelope"
	switch {
	case chunked:
		why = fmt.Sprintf("max_item_bytes=%d is uploaded in parts of %d bytes (ADR 025); the stream keeps %s", nd.MaxItemBytes, 512<<10, why)
	case nd.MaxItemBytes > 0:
		why = fmt.Sprintf("max_item_bytes=%d fits; the stream keeps %s, since one event carries every item of a write", nd.MaxItemBytes, why)
	}
	if size < MaxStreamMsgSize {
		why += fmt.Sprintf(", capped by the server's max payload %d", c.MaxPayload)
		p.Warnings = append(p.Warnings, fmt.Sprintf("the server's max payload %d is below the gateway's %d: writes whose event is larger are refused by JetStream", c.MaxPayload, MaxStreamMsgSize))
	}
	p.MaxMsgSize = Derived[int]{size, why}

	// Duplicate window.
	if retention > 0 && retention < DuplicateWindow {
		return fail("retention %v is shorter than the duplicate window %v; retries within it could store an event twice", retention, DuplicateWindow)
	}
	p.DuplicateWindow = Derived[time.Duration]{DuplicateWindow, "client retries within 2m are deduplicated by JetStream itself"}
	if h := ns.RetryHorizon(); h > DuplicateWindow {
		p.RetryHorizon = Derived[time.Duration]{h, fmt.Sprintf("retry_horizon=%v: tokens of single-event writes are kept in a KV bucket with this TTL", time.Duration(nd.RetryHorizon))}
	} else {
		p.RetryHorizon = Derived[time.Duration]{h, "JetStream's duplicate window alone (the default; declare needs.retry_horizon for longer)"}
	}

	// Backend.
	backend, err := deriveBackend(ns, c, retention, &p)
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", ns.Name, err)
	}
	p.Backend = backend

	// Partitions and parallelism.
	rate := partitionRate(ns.Abstraction, backend.Value)
	parts := max(1, int(math.Ceil(float64(nd.WriteRPS)/float64(rate))))
	if parts > 1 {
		return fail("write_rps %d needs %d partitions at %d events/s each (ADR 007), but Prism runs one projector per namespace: it serves at most %d writes/s; lower write_rps or split the namespace", nd.WriteRPS, parts, rate, rate)
	}
	p.Partitions = Derived[int]{1, fmt.Sprintf("write_rps=%d fits one partition (%d events/s, %s %s)", nd.WriteRPS, rate, backend.Value, ns.Abstraction)}
	p.ProjectorParallelism = Derived[int]{1, "one projector per namespace applies events in stream order"}
	if nd.Ordering == OrderingNone {
		p.ProjectorParallelism.Reason += "; ordering=none would allow more, not served yet"
	}
	if nd.WriteRPS > NodeWriteRate*c.Nodes {
		p.Warnings = append(p.Warnings, fmt.Sprintf("write_rps %d is above the %d acknowledged writes/s measured per 2-vCPU node; measure with prism bench", nd.WriteRPS, NodeWriteRate))
	}

	// Batch size.
	switch {
	case nd.WriteRPS >= 10_000:
		p.BatchSize = Derived[int]{1024, fmt.Sprintf("write_rps=%d ≥ 10000: larger batches amortize each commit", nd.WriteRPS)}
	case nd.WriteRPS > 0 && nd.WriteRPS < 1_000:
		p.BatchSize = Derived[int]{64, fmt.Sprintf("write_rps=%d < 1000: small batches, a commit per few events is cheap", nd.WriteRPS)}
	default:
		p.BatchSize = Derived[int]{256, "the projector default, the size every projector rate was measured at"}
	}

	// Read cache: the gateway caches the first page of keyvalue records
	// and whole entity records (gets by primary key), dropped as the
	// projector applies changes to them (ADR 008).
	switch {
	case ns.Abstraction != AbstractionKeyValue && ns.Abstraction != AbstractionEntity:
		p.ReadCache = Derived[bool]{false, "the read cache holds keyvalue and entity records only"}
		p.ReadCacheEntries = Derived[int]{0, "no cache"}
	case nd.ReadRPS >= 1_000 && nd.ReadRPS >= 10*nd.WriteRPS:
		entries := min(max(nd.ReadRPS*10, 1024), 100_000)
		p.ReadCache = Derived[bool]{true, fmt.Sprintf("read_rps=%d is ≥ 10× write_rps=%d: most reads can be served from memory", nd.ReadRPS, nd.WriteRPS)}
		p.ReadCacheEntries = Derived[int]{entries, "10 seconds of reads, within 1024 and 100000 records"}
	default:
		p.ReadCache = Derived[bool]{false, "reads do not dominate (read_rps < 1000 or < 10× write_rps)"}
		p.ReadCacheEntries = Derived[int]{0, "no cache"}
	}

	// Latency: a warning, since the measurements come from a shared
	// 2-vCPU machine.
	if lat := time.Duration(nd.P99Latency); lat > 0 {
		floor, what := MeasuredPutP99, "an unloaded put's"
		if ns.Consistency == Strong {
			floor, what = MeasuredVisibleP99, "a strong write's (put to visible)"
		}
		if lat < floor {
			p.Warnings = append(p.Warnings, fmt.Sprintf("p99_latency %v is below %s measured p99 of %v; measure with prism bench --rate", lat, what, floor))
		}
	}

	if p.Backend.Value == "kafka" {
		p.Kafka = DeriveKafkaTopic(ns, p)
	}
	if ns.Abstraction == AbstractionEntity {
		p.Indexes = entityIndexes(ns)
	}
	if ns.Abstraction == AbstractionGraph {
		p.GraphMaxDepth, p.GraphMaxResults = graphLimits(ns)
	}
	p.Limits = DeriveLimits(ns)
	p.Guarantee = guarantee(p, c)
	return p, nil
}

// deriveBackend resolves ns.Backend. It may add warnings to p.
func deriveBackend(ns Namespace, c Cluster, retention time.Duration, p *Plan) (Derived[string], error) {
	nd := ns.Needs
	if ns.Backend != BackendAuto {
		if ns.Backend == "natskv" && nd.MaxItemBytes > NATSKVMaxItemBytes {
			return Derived[string]{}, fmt.Errorf("%w: backend natskv is for small records; max_item_bytes %d is above %d (ADR 005); use sqlite or postgres", ErrCannotProvide, nd.MaxItemBytes, NATSKVMaxItemBytes)
		}
		return Derived[string]{ns.Backend, "named in the spec"}, nil
	}
	if ns.Abstraction == AbstractionLog {
		return Derived[string]{"kafka", "abstraction log is served by a Kafka topic"}, nil
	}
	if ns.Abstraction != AbstractionTimeSeries {
		return Derived[string]{"sqlite", "keyvalue size is not stated in needs: one SQLite file; name backend: postgres for larger data (natskv is never chosen: it is for small records)"}, nil
	}
	item := nd.MaxItemBytes
	if item == 0 {
		item = assumedItemBytes
	}
	var size float64
	var why string
	switch {
	case nd.WriteRPS == 0:
		return Derived[string]{"sqlite", "write_rps not stated: one SQLite file"}, nil
	case retention == 0:
		size, why = math.Inf(1), fmt.Sprintf("write_rps=%d without retention grows without bound", nd.WriteRPS)
	default:
		size = float64(nd.WriteRPS) * retention.Seconds() * float64(item)
		why = fmt.Sprintf("write_rps=%d × retention %v × %d bytes ≈ %.0f GiB", nd.WriteRPS, retention, item, size/(1<<30))
	}
	if size <= SQLiteMaxBytes {
		return Derived[string]{"sqlite", why + ", within one SQLite file (≤ 64 GiB)"}, nil
	}
	if !c.Postgres {
		p.Warnings = append(p.Warnings, "the data outgrows one SQLite file (> 64 GiB) and no PostgreSQL is available")
		return Derived[string]{"sqlite", why + ", beyond one SQLite file, but no PostgreSQL is available"}, nil
	}
	return Derived[string]{"postgres", why + ", beyond one SQLite file (> 64 GiB)"}, nil
}

// partitionRate is the events/s one partition is planned for.
func partitionRate(abstraction, backend string) int {
	switch {
	case backend == "kafka":
		return PartitionRateKafkaLog
	case backend == "natskv":
		return PartitionRateNATSKV
	case abstraction == AbstractionTimeSeries && backend == "postgres":
		return PartitionRatePostgresTimeSeries
	case abstraction == AbstractionTimeSeries:
		return PartitionRateSQLiteTimeSeries
	case backend == "postgres":
		return PartitionRatePostgresKeyValue
	default:
		return PartitionRateSQLiteKeyValue
	}
}

// durabilityWhy is how a reason names durability d as the namespace's
// needs state it: "durability=durable", or, when it is not stated,
// "durability not stated (best-effort)", so that every reason of one plan
// says it the same way.
func durabilityWhy(d Durability) string {
	if d == "" {
		return "durability not stated (best-effort)"
	}
	return "durability=" + string(d)
}

// guarantee says in words what an acknowledged write survives under p on c.
func guarantee(p Plan, c Cluster) string {
	switch {
	case p.Storage.Value == "memory":
		return "an acknowledged write is held in memory on one node: it survives neither a server restart nor a power loss, only what the backend already applied does"
	case p.Replicas.Value >= 3 && c.SyncAlways:
		return "an acknowledged write is fsynced on 2 of 3 nodes: it survives a process crash, a power loss of the whole cluster and the loss of one node"
	case p.Replicas.Value >= 3:
		return "an acknowledged write is stored on 2 of 3 nodes: it survives a process crash, a power loss of one node and the loss of one node; a power loss of the whole cluster may lose the last writes"
	case c.SyncAlways:
		return "an acknowledged write survives a process crash and a power loss, not the loss of the node's disk"
	default:
		return "an acknowledged write survives a process crash; a power loss or kernel crash may lose the writes of the last 2 minutes (JetStream fsyncs every 2 minutes without sync_always)"
	}
}
