package node

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/replay"
)

// Config is what a Node runs with: where it keeps its data, which NATS it
// uses, and the settings of its background work. The zero value of every
// field but DataDir is usable; Start fills in the defaults each field
// names and refuses a Config that cannot run (Validate). Errors name a
// field by its prism serve flag (--data-dir for DataDir, --nats-listen
// for NATSListen, ...), which is how most people set it.
type Config struct {
	// DataDir holds the embedded JetStream store (<DataDir>/jetstream),
	// the SQLite databases (<DataDir>/sqlite) and the instance id that
	// names this process on its projector consumers. Required.
	DataDir string

	// Conn is the NATS connection to serve on. The Node uses it and never
	// closes it: the caller does, after Close. With Conn nil the Node
	// connects to NATSURL, or embeds a server when that is empty too.
	Conn *nats.Conn
	// NATSURL is the NATS server to connect to instead of embedding one.
	NATSURL string
	// NATSOptions are added to the connection to NATSURL: credentials,
	// TLS, inbox prefix (prism serve's natsconn flags).
	NATSOptions []nats.Option
	// NATSListen is the host:port the embedded server listens on; port 0
	// picks a free one. Default "127.0.0.1:0".
	NATSListen string
	// SyncAlways makes the embedded server fsync every write before it is
	// acknowledged; with an external server it says the servers run
	// sync_always (namespaces may then need durability: durable).
	SyncAlways bool
	// Nodes is the number of JetStream servers of an external cluster,
	// for planning replicas; the embedded server is 1. Default 1.
	Nodes int

	// AuthConfig is the auth configuration file (auth.yaml, as prism
	// auth init writes it): with it every caller is authenticated by the
	// auth callout, every request authorized by its namespace's policy
	// (docs/security.md). Without it Prism runs open, as development
	// mode, and then refuses any listener or NATS server beyond loopback.
	AuthConfig string
	// AuditRetention is how long audit records are kept. Default
	// DefaultAuditRetention.
	AuditRetention time.Duration
	// PIIKEK is the key encryption key of PII data keys: file:PATH (a key
	// file, prism keys init-kek writes one) or awskms:KEY (an AWS KMS key
	// id, ARN or alias). Empty: a development key file in the data
	// directory, made at the first start. Every process of a deployment
	// needs the same one.
	PIIKEK string
	// PIIPreviousKEKs are earlier KEKs, to read data keys not yet
	// rewrapped under PIIKEK (prism keys rewrap).
	PIIPreviousKEKs []string

	// HTTPListen, when set, serves /metrics (Prometheus), /healthz and
	// /readyz on this host:port; /healthz answers while Start runs.
	HTTPListen string
	// DrainTimeout bounds Close: in-flight requests, the projectors'
	// last batches and the backends' close. Default 15s.
	DrainTimeout time.Duration
	// SweepInterval is how often expired items and events past retention
	// are deleted from the backends; 0 turns the sweeper off.
	SweepInterval time.Duration
	// NoCompact turns off the background compaction of keyvalue streams.
	NoCompact bool
	// CompactCheckInterval is how often a keyvalue stream is checked for
	// compaction; 0 is replay.DefaultCompactCheckInterval.
	CompactCheckInterval time.Duration
	// CompactRate paces background compaction, in messages read a second
	// (a rollup counts as 100; ADR 028); 0 is replay.DefaultCompactorRate.
	CompactRate float64
	// MaxValueBytes is the largest keyvalue value, uploaded in parts
	// above 512 KiB (ADR 025); 0 is DefaultMaxValueBytes (64 MiB). At
	// least gateway.MaxValueBytes (512 KiB, the largest value sent whole);
	// exactly that turns uploads in parts off.
	MaxValueBytes int
	// MaxInFlight is how many requests the gateway handles at once; beyond
	// it requests are shed with RESOURCE_EXHAUSTED (ADR 023). 0 is
	// DefaultMaxInFlight (1024).
	MaxInFlight int
	// MaxInFlightBytes bounds the total body size of the requests the
	// gateway handles at once; a request that would pass it is shed (one
	// larger than it still runs alone). 0 is DefaultMaxInFlightBytes
	// (256 MiB). docs/operations.md, "Memory bound", derives the gateway's
	// memory from it and MaxInFlight.
	MaxInFlightBytes int64

	// PostgresDSN is the connection string of postgres targets that name
	// none of their own.
	PostgresDSN string
	// NeptuneEndpoint is the Neptune cluster (host:port) of graph
	// namespaces with backend neptune; requests are signed with the AWS
	// SDK's default chain and region.
	NeptuneEndpoint string
	// KafkaBrokers are the brokers (host:port) of log namespaces that name
	// none of their own; see ResolveKafkaBrokers.
	KafkaBrokers []string

	// Role is what this process runs (prism serve --role): RoleAll (the
	// default, ""), RoleGateway or RoleProjector (ADR 022).
	Role string

	// OTLPEndpoint, when set, exports traces to this OTLP/HTTP collector
	// (a base URL; /v1/traces is appended). The OTEL_* variables apply.
	OTLPEndpoint string
	// Version is reported as service.version on the traces.
	Version string
}

// The roles of Config.Role.
const (
	// RoleAll serves requests and projects: one process does everything.
	RoleAll = "all"
	// RoleGateway serves requests and projects nothing: every target it
	// opens stays on standby (ADR 022), reads of shared backends are
	// served from them, reads of SQLite go to a process that projects.
	RoleGateway = "gateway"
	// RoleProjector projects and serves no request.
	RoleProjector = "projector"
)

// Defaults of Config.
const (
	DefaultNATSListen   = "127.0.0.1:0"
	DefaultDrainTimeout = 15 * time.Second
	// DefaultAuditRetention keeps audit records 90 days.
	DefaultAuditRetention = 90 * 24 * time.Hour
	// The defaults of the gateway's limits.
	DefaultMaxInFlight      = gateway.DefaultMaxInFlight
	DefaultMaxInFlightBytes = gateway.DefaultMaxInFlightBytes
	DefaultMaxValueBytes    = namespaces.MaxChunkedValueBytes
)

// withDefaults returns c with its defaults filled in, or an error naming
// what cannot run.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, errors.New("--data-dir: a data directory is needed")
	}
	if c.NATSListen == "" {
		c.NATSListen = DefaultNATSListen
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.AuditRetention <= 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	switch {
	case c.external() && c.Nodes < 0:
		return c, fmt.Errorf("--nodes %d: want at least 1", c.Nodes)
	case !c.external() || c.Nodes == 0:
		c.Nodes = 1
	}
	switch c.Role {
	case "":
		c.Role = RoleAll
	case RoleAll, RoleGateway, RoleProjector:
	default:
		return c, fmt.Errorf("--role %q: want %s, %s or %s", c.Role, RoleAll, RoleGateway, RoleProjector)
	}
	if err := c.checkLimits(); err != nil {
		return c, err
	}
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.MaxInFlightBytes = cmp.Or(c.MaxInFlightBytes, DefaultMaxInFlightBytes)
	c.MaxValueBytes = cmp.Or(c.MaxValueBytes, DefaultMaxValueBytes)
	if err := c.checkOpen(); err != nil {
		return c, err
	}
	return c, nil
}

// checkLimits refuses admission limits and a value limit the gateway
// would not take, and a compaction pace replay would not; 0 is each
// one's default.
func (c Config) checkLimits() error {
	switch {
	case !(c.CompactRate >= 0) || math.IsInf(c.CompactRate, 1):
		return fmt.Errorf("--compact-rate %v: want a number of messages a second (0 is the default, %d)", c.CompactRate, replay.DefaultCompactorRate)
	case c.MaxInFlight < 0:
		return fmt.Errorf("--max-in-flight %d: want at least 1 request (0 is the default, %d)", c.MaxInFlight, DefaultMaxInFlight)
	case c.MaxInFlightBytes < 0:
		return fmt.Errorf("--max-in-flight-bytes %d: want at least 1 byte (0 is the default, %d)", c.MaxInFlightBytes, DefaultMaxInFlightBytes)
	case c.MaxValueBytes < 0 || c.MaxValueBytes > 0 && c.MaxValueBytes < gateway.MaxValueBytes:
		return fmt.Errorf("--max-value-bytes %d: want at least %d (512 KiB, the largest value sent whole; 0 is the default, %d)", c.MaxValueBytes, gateway.MaxValueBytes, DefaultMaxValueBytes)
	}
	return nil
}

// projects reports whether c's process runs projectors.
func (c Config) projects() bool { return c.Role != RoleGateway }

// Validate reports whether c can run, with the same errors Start gives.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// external reports whether c uses a NATS server it does not embed.
func (c Config) external() bool { return c.Conn != nil || c.NATSURL != "" }

// cluster is the deployment namespaces are planned for.
func (c Config) cluster() namespaces.Cluster {
	return namespaces.Cluster{Nodes: max(c.Nodes, 1), SyncAlways: c.SyncAlways, Postgres: c.PostgresDSN != ""}
}

// Seed is what a Node applies to the namespace registry when it starts,
// like prism apply: new namespaces are created, changed ones updated,
// unchanged ones left alone.
type Seed struct {
	// Namespaces are the namespaces to apply.
	Namespaces []namespaces.Namespace
	// OnlyIfNew applies them only when the registry did not exist yet
	// (the demo namespace of a new data directory).
	OnlyIfNew bool
	// By is recorded as who applied them.
	By string
}

// DemoNamespace is what prism serve runs without --config.
var DemoNamespace = namespaces.Namespace{Name: "demo", Abstraction: "keyvalue", Backend: "sqlite", Consistency: "strong"}

// ResolveKafkaBrokers returns the Kafka brokers of flag (comma-separated
// host:port, --kafka-brokers), else of $PRISM_KAFKA_BROKERS; nil when both
// are empty. A bad entry is an error naming where it came from, so that a
// bad list stops prism serve rather than every Kafka namespace.
func ResolveKafkaBrokers(flag string) ([]string, error) {
	list, from := flag, "--kafka-brokers"
	if list == "" {
		list, from = os.Getenv("PRISM_KAFKA_BROKERS"), "PRISM_KAFKA_BROKERS"
	}
	if list == "" {
		return nil, nil
	}
	var out []string
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		if err := namespaces.ValidateBroker(b); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		out = append(out, b)
	}
	return out, nil
}
