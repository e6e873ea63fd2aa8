package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// indexRetryEvery is the pause before a build that failed on an error
// (not on the records) runs again.
const indexRetryEvery = 5 * time.Second

// indexBuilds runs the builds of the secondary indexes a live prism
// apply added to one entity target (docs/entity.md, "Schema evolution")
// and keeps their last known states for prism status.
type indexBuilds struct {
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	states  map[string]*prismv1.EntityIndexState
	running map[string]bool
}

func newIndexBuilds(log *slog.Logger) *indexBuilds {
	ctx, cancel := context.WithCancel(context.Background())
	return &indexBuilds{log: log, ctx: ctx, cancel: cancel, states: map[string]*prismv1.EntityIndexState{}, running: map[string]bool{}}
}

// stop ends the running builds (each commits its last step) and waits
// for them; a later sync resumes them.
func (b *indexBuilds) stop() {
	b.cancel()
	b.wg.Wait()
}

// sync makes the indexes of es those of entity namespace n and starts a
// build of each one that is building and has none running.
func (b *indexBuilds) sync(ctx context.Context, n namespaces.Namespace, target string, es enStore) error {
	schema, err := n.EntitySchema()
	if err != nil {
		return err
	}
	states, err := es.SyncEntityIndexes(ctx, schema.IndexNames())
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states = map[string]*prismv1.EntityIndexState{}
	for _, st := range states {
		b.states[st.GetIndex()] = st
		if st.GetState() != "building" || b.running[st.GetIndex()] {
			continue
		}
		var key sqlite.IndexKeyFunc
		unique := false
		if ix, _ := schema.Index(st.GetIndex()); ix.Blind {
			// Its keys need the sealed values and the data key; a blind
			// index is never added live (prism plan refuses it), so the
			// entries the events carry are all (a migration's replay).
			b.log.Info("entity blind index: its entries come from the events", "namespace", n.Name, "target", target, "index", st.GetIndex())
		} else if key, unique, err = gateway.EntityIndexKeys(n, st.GetIndex()); err != nil {
			return err
		}
		b.running[st.GetIndex()] = true
		b.wg.Add(1)
		go b.build(n.Name, target, es, sqlite.IndexBuild{Index: st.GetIndex(), Unique: unique, Key: key, Progress: b.set})
	}
	return nil
}

// build runs one index build until it ends ready or failed, or the
// builds stop; an error pauses it for indexRetryEvery.
func (b *indexBuilds) build(ns, target string, es enStore, ib sqlite.IndexBuild) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.running, ib.Index)
		b.mu.Unlock()
	}()
	log := b.log.With("namespace", ns, "target", target, "index", ib.Index)
	log.Info("entity index build started")
	start := time.Now()
	for {
		st, err := es.BuildEntityIndex(b.ctx, ib)
		switch {
		case b.ctx.Err() != nil:
			return
		case err != nil:
			log.Error("entity index build stopped; retrying", "err", err, "retry_in", indexRetryEvery)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(indexRetryEvery):
			}
			continue
		case st == nil:
			return // the index was removed meanwhile
		case st.GetState() == "failed":
			b.set(st)
			log.Error("entity index build failed: the index holds no rows and answers no queries", "reason", st.GetDetail())
		default:
			b.set(st)
			log.Info("entity index ready", "records", st.GetDone(), "took", time.Since(start).Round(time.Millisecond))
		}
		return
	}
}

func (b *indexBuilds) set(st *prismv1.EntityIndexState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.states[st.GetIndex()]; ok {
		b.states[st.GetIndex()] = st
	}
}

// status lists the last known states, by index name.
func (b *indexBuilds) status() []namespaces.IndexStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]namespaces.IndexStatus, 0, len(b.states))
	for _, st := range b.states {
		out = append(out, namespaces.IndexStatus{Index: st.GetIndex(), State: st.GetState(), Done: st.GetDone(), Total: st.GetTotal(), Detail: st.GetDetail()})
	}
	slices.SortFunc(out, func(a, b namespaces.IndexStatus) int {
		if a.Index < b.Index {
			return -1
		}
		return 1
	})
	return out
}

// syncIndexes syncs the indexes of run, an entity target of n that this
// process projects (a standby's are the projecting process's to build; it
// syncs them when it takes over) and that is not backfilling (a
// backfilling one is synced when it caught up: the events it replays
// carry the entries of the indexes known when each was written, so the
// indexes are rebuilt from the records then).
func (s *namespaceSet) syncIndexes(ctx context.Context, n namespaces.Namespace, run *targetRun) error {
	es, ok := run.store.(enStore)
	if !ok || run.indexes == nil || run.newJob != nil || run.standby != nil {
		return nil
	}
	return run.indexes.sync(ctx, n, run.target.Name, es)
}
