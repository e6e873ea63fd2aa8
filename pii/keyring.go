package pii

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// ErrForgotten is returned when a value's record secret was deleted by
// Forget: the value can never be read again.
var ErrForgotten = errors.New("pii: the record's personal data was forgotten")

// Defaults of KeyringConfig.
const (
	DefaultSecretCache = 100_000
	DefaultKeyTTL      = time.Minute
)

// KeyringConfig configures OpenKeyring.
type KeyringConfig struct {
	// KEK wraps new data keys. Required.
	KEK KEK
	// Previous are earlier KEKs, to unwrap data keys not yet rewrapped
	// under KEK (see Rewrap).
	Previous []KEK
	// Replicas of the bucket; raised on an existing bucket, never lowered.
	Replicas int
	// SecretCache bounds how many record secrets are kept in memory;
	// DefaultSecretCache when 0.
	SecretCache int
	// KeyTTL is how long a cached record secret or current data key is
	// trusted before it is read again: the longest another process keeps
	// sealing with a data key after a rotation, or reading a record after
	// a forget whose notice it missed. DefaultKeyTTL when 0.
	KeyTTL time.Duration
	// Logger logs key events (never key material); slog.Default when nil.
	Logger *slog.Logger
}

// Keyring holds the PII key material of every namespace in the KV bucket
// subjects.PIIKeysBucket: data keys wrapped by the KEK under
// dk.<ns>.<serial>, record secrets under rs.<ns>.<id>, and forget notices
// under fg.<ns>.<id>. It caches unwrapped data keys and record secrets;
// every process of a deployment opens the same bucket. It is safe for
// concurrent use.
type Keyring struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	kek   KEK
	keks  map[string]KEK
	cfg   KeyringConfig
	log   *slog.Logger
	watch jetstream.KeyWatcher
	done  chan struct{}

	mu      sync.Mutex
	keys    map[string]*nsKeys // by namespace
	secrets map[string]cachedSecret
}

type nsKeys struct {
	current   *Sealer
	serial    int
	checkedAt time.Time
	byID      map[string]*Sealer
}

type cachedSecret struct {
	rs RecordSecret
	at time.Time
	// seal is the record key under the data key last used with the
	// secret, kept so that a write or read does not derive it again
	// (HKDF and a cipher).
	seal *RecordKey
}

// OpenKeyring opens the key bucket, creating it if it does not exist, and
// starts following forget notices. Close stops that.
func OpenKeyring(ctx context.Context, js jetstream.JetStream, cfg KeyringConfig) (*Keyring, error) {
	if cfg.KEK == nil {
		return nil, errors.New("pii: a keyring needs a key encryption key")
	}
	if cfg.SecretCache <= 0 {
		cfg.SecretCache = DefaultSecretCache
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = DefaultKeyTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	kv, err := openBucket(ctx, js, max(cfg.Replicas, 1))
	if err != nil {
		return nil, err
	}
	k := &Keyring{
		js: js, kv: kv, kek: cfg.KEK, keks: map[string]KEK{cfg.KEK.ID(): cfg.KEK}, cfg: cfg, log: log,
		done: make(chan struct{}), keys: make(map[string]*nsKeys), secrets: make(map[string]cachedSecret),
	}
	for _, p := range cfg.Previous {
		k.keks[p.ID()] = p
	}
	w, err := kv.Watch(ctx, "fg.>", jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("pii: follow forget notices: %w", err)
	}
	k.watch = w
	go k.followForgets()
	return k, nil
}

// openBucket opens the key bucket, creating its stream if it does not
// exist. The stream is made as CreateKeyValue makes a bucket's, except
// that it allows deleting a message: Forget erases a record secret's
// bytes (a secure delete), where a KV delete would only mark it deleted.
func openBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:              keyStream,
		Description:       "Prism PII keys: wrapped data keys and record secrets (ADR 016)",
		Subjects:          []string{"$KV." + subjects.PIIKeysBucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxConsumers:      -1,
		MaxMsgSize:        -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		AllowRollup:       true,
		AllowDirect:       true,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("pii: create key bucket %s: %w", subjects.PIIKeysBucket, err)
	}
	kv, err := js.KeyValue(ctx, subjects.PIIKeysBucket)
	if err != nil {
		return nil, fmt.Errorf("pii: open key bucket %s: %w", subjects.PIIKeysBucket, err)
	}
	return kv, nil
}

// keyStream is the stream of the key bucket.
const keyStream = "KV_" + subjects.PIIKeysBucket

// Close stops following forget notices.
func (k *Keyring) Close() {
	select {
	case <-k.done:
	default:
		close(k.done)
		_ = k.watch.Stop()
	}
}

// KEKID names the KEK new data keys are wrapped by.
func (k *Keyring) KEKID() string { return k.kek.ID() }

func (k *Keyring) followForgets() {
	for {
		select {
		case <-k.done:
			return
		case e, ok := <-k.watch.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			if ns, id, ok := parseRecordKey(e.Key(), "fg."); ok {
				k.evict(ns, id)
			}
		}
	}
}

// recordKey is the bucket key of a record under prefix ("rs." or "fg.").
func recordKey(prefix, ns string, id []byte) string {
	return prefix + ns + "." + base64.RawURLEncoding.EncodeToString(id)
}

func parseRecordKey(key, prefix string) (ns string, id []byte, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", nil, false
	}
	ns, enc, ok := strings.Cut(rest, ".")
	if !ok {
		return "", nil, false
	}
	id, err := base64.RawURLEncoding.DecodeString(enc)
	return ns, id, err == nil
}

func secretCacheKey(ns string, id []byte) string { return ns + "\x00" + string(id) }

func (k *Keyring) evict(ns string, id []byte) {
	k.mu.Lock()
	delete(k.secrets, secretCacheKey(ns, id))
	k.mu.Unlock()
}

// SealKey returns the key that seals new values of record id in
// namespace ns: the namespace's current data key (made if it has none)
// and the record's secret (made if it has none).
func (k *Keyring) SealKey(ctx context.Context, ns string, id []byte) (*RecordKey, error) {
	s, err := k.current(ctx, ns)
	if err != nil {
		return nil, err
	}
	ck := secretCacheKey(ns, id)
	k.mu.Lock()
	if c, ok := k.secrets[ck]; ok && c.seal != nil && c.seal.keyID == s.id && time.Since(c.at) < k.cfg.KeyTTL {
		k.mu.Unlock()
		return c.seal, nil
	}
	k.mu.Unlock()
	rs, err := k.secret(ctx, ns, id, true)
	if err != nil {
		return nil, err
	}
	rk, err := s.Record(ns, id, rs)
	if err != nil {
		return nil, err
	}
	k.keep(ck, rs, rk)
	return rk, nil
}

// OpenKey returns the key that opens a value of record id in namespace ns
// whose header is h. Errors: ErrForgotten when the record's secret was
// deleted by Forget; ErrDecrypt when the record has no secret, or another
// one than h names, and was never forgotten (the value was moved here from
// another record); an error naming a data key that does not exist or a
// KEK this process does not hold.
func (k *Keyring) OpenKey(ctx context.Context, ns string, id []byte, h Header) (*RecordKey, error) {
	ck := secretCacheKey(ns, id)
	k.mu.Lock()
	if c, ok := k.secrets[ck]; ok && c.seal != nil && c.seal.keyID == h.KeyID && c.rs.ID == h.SecretID && time.Since(c.at) < k.cfg.KeyTTL {
		k.mu.Unlock()
		return c.seal, nil
	}
	k.mu.Unlock()
	rs, err := k.secret(ctx, ns, id, false)
	if errors.Is(err, ErrForgotten) || err == nil && rs.ID != h.SecretID {
		// Forgotten, or a value moved here from another record.
		return nil, k.forgottenOrMoved(ctx, ns, id)
	}
	if err != nil {
		return nil, err
	}
	s, err := k.byID(ctx, ns, h.KeyID)
	if err != nil {
		return nil, err
	}
	rk, err := s.Record(ns, id, rs)
	if err != nil {
		return nil, err
	}
	k.keep(ck, rs, rk)
	return rk, nil
}

// keep caches rk, the record key of the record ck names under secret rs,
// while that secret is the cached one.
func (k *Keyring) keep(ck string, rs RecordSecret, rk *RecordKey) {
	k.mu.Lock()
	if c, ok := k.secrets[ck]; ok && c.rs.ID == rs.ID {
		c.seal = rk
		k.secrets[ck] = c
	}
	k.mu.Unlock()
}

// forgottenOrMoved tells why a value's secret is not the record's:
// ErrForgotten when the record was forgotten, ErrDecrypt otherwise.
func (k *Keyring) forgottenOrMoved(ctx context.Context, ns string, id []byte) error {
	_, err := k.kv.Get(ctx, recordKey("fg.", ns, id))
	switch {
	case err == nil:
		return ErrForgotten
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return ErrDecrypt
	default:
		return fmt.Errorf("pii: read forget notice: %w", err)
	}
}

// RequestHasher returns the keyed hash of requests of namespace ns: the
// first data key's, so that a retry hashes alike across rotations.
func (k *Keyring) RequestHasher(ctx context.Context, ns string) (*Sealer, error) {
	if _, err := k.current(ctx, ns); err != nil {
		return nil, err
	}
	return k.byID(ctx, ns, keyID(1))
}

func keyID(serial int) string { return "k" + strconv.Itoa(serial) }

func dataKeyKey(ns string, serial int) string { return "dk." + ns + "." + strconv.Itoa(serial) }

// current returns the namespace's newest data key, making the first one
// when it has none.
func (k *Keyring) current(ctx context.Context, ns string) (*Sealer, error) {
	k.mu.Lock()
	nk := k.keys[ns]
	if nk != nil && nk.current != nil && time.Since(nk.checkedAt) < k.cfg.KeyTTL {
		s := nk.current
		k.mu.Unlock()
		return s, nil
	}
	k.mu.Unlock()
	serial, dk, err := k.newest(ctx, ns)
	if err != nil {
		return nil, err
	}
	if serial == 0 {
		if serial, dk, err = k.addDataKey(ctx, ns, 1); err != nil {
			return nil, err
		}
	}
	// A key this process unwrapped before is not unwrapped again: with a
	// KMS that is a call on the write path.
	k.mu.Lock()
	s := k.nsKeys(ns).byID[dk.ID]
	k.mu.Unlock()
	if s == nil {
		if s, err = k.unwrap(dk); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	nk = k.nsKeys(ns)
	nk.byID[s.id] = s
	if serial >= nk.serial {
		nk.current, nk.serial = s, serial
	}
	nk.checkedAt = time.Now()
	return nk.current, nil
}

func (k *Keyring) nsKeys(ns string) *nsKeys {
	nk := k.keys[ns]
	if nk == nil {
		nk = &nsKeys{byID: make(map[string]*Sealer)}
		k.keys[ns] = nk
	}
	return nk
}

// newest returns the serial and stored form of the namespace's newest
// data key; serial 0 when it has none.
func (k *Keyring) newest(ctx context.Context, ns string) (int, DataKey, error) {
	keys, err := k.DataKeys(ctx, ns)
	if err != nil || len(keys) == 0 {
		return 0, DataKey{}, err
	}
	last := keys[len(keys)-1]
	return last.Serial, last.DataKey, nil
}

// StoredKey is a data key as the bucket holds it.
type StoredKey struct {
	DataKey
	Serial  int       `json:"serial"`
	Created time.Time `json:"created"`
}

// DataKeys lists the namespace's data keys, oldest first.
func (k *Keyring) DataKeys(ctx context.Context, ns string) ([]StoredKey, error) {
	lister, err := k.kv.ListKeysFiltered(ctx, "dk."+ns+".*")
	if err != nil {
		return nil, fmt.Errorf("pii: list data keys of %s: %w", ns, err)
	}
	var out []StoredKey
	for key := range lister.Keys() {
		sk, err := k.stored(ctx, key)
		if err != nil {
			return nil, err
		}
		out = append(out, sk)
	}
	slices.SortFunc(out, func(a, b StoredKey) int { return cmp.Compare(a.Serial, b.Serial) })
	return out, nil
}

func (k *Keyring) stored(ctx context.Context, key string) (StoredKey, error) {
	e, err := k.kv.Get(ctx, key)
	if err != nil {
		return StoredKey{}, fmt.Errorf("pii: read data key %s: %w", key, err)
	}
	var sk StoredKey
	if err := json.Unmarshal(e.Value(), &sk); err != nil {
		return StoredKey{}, fmt.Errorf("pii: data key %s is not readable: %w", key, err)
	}
	return sk, nil
}

// addDataKey stores a new data key with serial; when another process
// stored that serial first, it returns that one.
func (k *Keyring) addDataKey(ctx context.Context, ns string, serial int) (int, DataKey, error) {
	dk, _, err := NewDataKey(keyID(serial), k.kek)
	if err != nil {
		return 0, DataKey{}, err
	}
	b, err := json.Marshal(StoredKey{DataKey: dk, Serial: serial, Created: time.Now().UTC()})
	if err != nil {
		return 0, DataKey{}, err
	}
	key := dataKeyKey(ns, serial)
	if _, err := k.kv.Create(ctx, key, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, DataKey{}, fmt.Errorf("pii: store data key %s: %w", key, err)
		}
		sk, err := k.stored(ctx, key)
		return serial, sk.DataKey, err
	}
	k.log.Info("pii: new data key", "namespace", ns, "key", dk.ID, "kek", dk.KEKID)
	return serial, dk, nil
}

func (k *Keyring) unwrap(dk DataKey) (*Sealer, error) {
	kek, ok := k.keks[dk.KEKID]
	if !ok {
		return nil, fmt.Errorf("pii: data key %s is wrapped by KEK %s, which this process does not hold; configure it as a previous KEK, or rewrap", dk.ID, dk.KEKID)
	}
	return OpenDataKey(dk, kek)
}

// byID returns the namespace's data key named id.
func (k *Keyring) byID(ctx context.Context, ns, id string) (*Sealer, error) {
	k.mu.Lock()
	if nk := k.keys[ns]; nk != nil {
		if s := nk.byID[id]; s != nil {
			k.mu.Unlock()
			return s, nil
		}
	}
	k.mu.Unlock()
	serial, err := strconv.Atoi(strings.TrimPrefix(id, "k"))
	if err != nil || !strings.HasPrefix(id, "k") || serial < 1 {
		return nil, fmt.Errorf("pii: %w: data key id %q", ErrMalformed, id)
	}
	sk, err := k.stored(ctx, dataKeyKey(ns, serial))
	if err != nil {
		return nil, err
	}
	s, err := k.unwrap(sk.DataKey)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.nsKeys(ns).byID[id] = s
	k.mu.Unlock()
	return s, nil
}

// secret returns the record's secret, making one when create is set and it
// has none. Errors: ErrForgotten when it has none and create is not set.
func (k *Keyring) secret(ctx context.Context, ns string, id []byte, create bool) (RecordSecret, error) {
	ck := secretCacheKey(ns, id)
	k.mu.Lock()
	if c, ok := k.secrets[ck]; ok && time.Since(c.at) < k.cfg.KeyTTL {
		k.mu.Unlock()
		return c.rs, nil
	}
	k.mu.Unlock()
	key := recordKey("rs.", ns, id)
	var rs RecordSecret
	if create {
		// A write not in the cache is most often a record's first:
		// create its secret in one round trip; if it exists, read it.
		rs = NewRecordSecret()
		b, _ := rs.MarshalBinary()
		_, err := k.kv.Create(ctx, key, b)
		switch {
		case err == nil:
			k.cache(ck, rs)
			return rs, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return RecordSecret{}, fmt.Errorf("pii: store record secret: %w", err)
		}
	}
	e, err := k.kv.Get(ctx, key)
	switch {
	case err == nil:
		if err := rs.UnmarshalBinary(e.Value()); err != nil {
			return RecordSecret{}, fmt.Errorf("pii: record secret %s: %w", key, err)
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return RecordSecret{}, ErrForgotten
	default:
		return RecordSecret{}, fmt.Errorf("pii: read record secret: %w", err)
	}
	k.cache(ck, rs)
	return rs, nil
}

// cache keeps rs, the secret of the record ck names, evicting a random
// one when full.
func (k *Keyring) cache(ck string, rs RecordSecret) {
	k.mu.Lock()
	if len(k.secrets) >= k.cfg.SecretCache {
		for victim := range k.secrets { // map order: a random victim
			delete(k.secrets, victim)
			break
		}
	}
	k.secrets[ck] = cachedSecret{rs: rs, at: time.Now()}
	k.mu.Unlock()
}
