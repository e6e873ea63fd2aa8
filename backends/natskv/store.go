package natskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"

	"github.com/prism-data/prism/backends/internal/kit"
)

// defaultTimeout bounds a call whose context has no deadline.
const defaultTimeout = 30 * time.Second

// Store is the NATS KV bucket of one namespace. Its methods are safe for
// concurrent use. Create it with Open and release it with Close; Close does
// not close the NATS connection, which belongs to the caller.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	bucket string
	prefix string // "$KV.<bucket>."
	now    func() time.Time

	// gate is entered by every operation and closed by Close, so Close
	// waits for the operations in flight and none starts after it.
	gate kit.Gate

	// wmu serializes this Store's writers (ApplyKeyValue, SweepExpired),
	// which read the state they change; readers that lost several races
	// with writers take it for reading. Writers in other processes are
	// kept out by the checkpoint's expected sequence instead.
	wmu sync.RWMutex

	cacheMu sync.Mutex
	cache   *scanCache // ScanIDs' last list of records

	// beforeCommit, when set (tests only), runs before each atomic batch is
	// published.
	beforeCommit func()
}

// BucketName returns the KV bucket of namespace ns: PRISM_KV_ and the
// namespace in upper case (its stream is KV_PRISM_KV_<NS>).
func BucketName(ns string) string { return "PRISM_KV_" + strings.ToUpper(ns) }

// Open opens the KV bucket of namespace on js, creating it if needed (one
// value per key, the storage and replicas of the options), and enables on
// its stream what the Store needs: atomic batch publish and direct gets.
// The bucket of an existing namespace keeps its storage and replicas.
//
// It returns an error for an invalid namespace or option, or when the
// bucket cannot be created, read or updated (for instance a server older
// than 2.12, without atomic batches); it never returns a partly opened
// Store.
func Open(ctx context.Context, js jetstream.JetStream, namespace string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return nil, fmt.Errorf("open nats kv store: %w", err)
	}
	if js == nil {
		return nil, errors.New("open nats kv store: nil JetStream")
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return nil, fmt.Errorf("open nats kv store: %w", err)
	}
	if v := js.Conn().ConnectedServerVersion(); !versionAtLeast(v, 2, 12) {
		return nil, fmt.Errorf("open nats kv store: %w: connected to %s", ErrUnsupportedServer, v)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	bucket := BucketName(namespace)
	stream, err := ensureBucket(ctx, js, bucket, o)
	if err != nil {
		return nil, fmt.Errorf("open nats kv store %s: %w", bucket, err)
	}
	return &Store{
		js:     js,
		stream: stream,
		bucket: bucket,
		prefix: "$KV." + bucket + ".",
		now:    o.now,
	}, nil
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, bucket string, o options) (jetstream.Stream, error) {
	_, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "Prism KeyValue projection",
			History:     1,
			Storage:     o.storage,
			Replicas:    o.replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another process won the race
			_, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, err
	}
	// The KV API does not expose atomic batches; enable them on the stream.
	// Per-message TTLs let delete markers (tombstones) go away.
	cfg := stream.CachedInfo().Config
	if cfg.AllowAtomicPublish && cfg.AllowDirect && cfg.AllowMsgTTL {
		return stream, nil
	}
	cfg.AllowAtomicPublish, cfg.AllowDirect, cfg.AllowMsgTTL = true, true, true
	if stream, err = js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("enable atomic batches: %w", err)
	}
	// A server that does not know a setting drops it silently.
	if !stream.CachedInfo().Config.AllowAtomicPublish {
		return nil, ErrUnsupportedServer
	}
	return stream, nil
}

// versionAtLeast reports whether the server version v ("2.12.1",
// "2.14.0-beta") is at least major.minor. An unparsable version passes:
// the stream update then tells.
func versionAtLeast(v string, major, minor int) bool {
	var maj, min int
	if _, err := fmt.Sscanf(v, "%d.%d", &maj, &min); err != nil {
		return true
	}
	return maj > major || maj == major && min >= minor
}

// Bucket returns the name of the store's KV bucket.
func (s *Store) Bucket() string { return s.bucket }

// Close marks the store closed. It waits for the operations in flight, is
// idempotent (later calls return nil), and afterwards every method returns
// ErrClosed. The bucket and the connection stay as they are.
func (s *Store) Close() error { return s.gate.Close(nil) }

// acquire lets one operation in, or returns ErrClosed after Close. The
// caller must call s.gate.Leave when acquire returns nil.
func (s *Store) acquire() error { return s.gate.Enter(ErrClosed) }

// withTimeout adds defaultTimeout to a context without a deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// Checkpoint returns the stream sequence of the last applied batch, 0 if no
// batch was ever applied. It returns ErrClosed after Close, ctx's error if
// it ends, otherwise the NATS error.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	return kit.Do(&s.gate, ErrClosed, "read checkpoint", nil, func() (uint64, error) {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		cp, _, err := s.readCheckpoint(ctx)
		return cp, err
	})
}

// readCheckpoint returns the checkpoint and the stream sequence of its
// message (0, 0 when there is none yet).
func (s *Store) readCheckpoint(ctx context.Context) (cp, msgSeq uint64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+checkpointKey)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, ctxErr(ctx, err)
	}
	cp, err = strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: checkpoint %q", ErrCorrupt, m.Data)
	}
	return cp, m.Sequence, nil
}

// ctxErr returns ctx's error if it ended (the NATS client may report a
// cancelled request as a timeout), or else err.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
