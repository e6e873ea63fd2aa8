package node

import (
	"context"
	"fmt"
	"time"

	"github.com/prism-data/prism/namespaces"
)

// retryFailedEvery is how often namespaces that failed to open are retried.
const retryFailedEvery = 5 * time.Second

// takeOverEvery is how often a standby tries to take over a namespace
// (ADR 022), and a projecting process looks for projectors that found
// another process pinned (ADR 026): two JetStream API requests per standby
// namespace, so that a dead owner is replaced about as soon as its
// consumer counts as idle (projectors.InUseBy: its pin expired), not up to
// retryFailedEvery later.
const takeOverEvery = time.Second

// follow applies every change of the registry until stop, retrying
// namespaces that failed to open. It returns once the namespaces registered
// when it began have been opened (or failed), or when wait ends first.
//
// After the NATS connection reconnected it watches the registry anew
// (the watch's consumer may be gone with the server) and reconciles: what
// changed meanwhile is applied, and namespaces deleted meanwhile stop.
func (s *namespaceSet) follow(wait context.Context, reg *namespaces.Registry) error {
	s.reg = reg
	s.watchBackfills()
	first := make(chan struct{})
	if err := s.watch(reg, first); err != nil {
		return err
	}
	select {
	case <-first:
		return nil
	case <-wait.Done():
		return fmt.Errorf("reading the namespace registry: %w", wait.Err())
	}
}

// reconnectCheckEvery is how often follow looks for a NATS reconnect.
const reconnectCheckEvery = 250 * time.Millisecond

// watch starts the goroutine that follows reg; synced is closed once the
// first watch delivered every registered namespace.
func (s *namespaceSet) watch(reg *namespaces.Registry, synced chan struct{}) error {
	ctx := s.ctx
	nc := s.js.Conn()
	changes, cancel, err := s.startWatch(ctx, reg)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { cancel() }()
		retry := time.NewTicker(retryFailedEvery)
		defer retry.Stop()
		takeOver := time.NewTicker(takeOverEvery)
		defer takeOver.Stop()
		check := time.NewTicker(reconnectCheckEvery)
		defer check.Stop()
		reconnects := nc.Stats().Reconnects
		// seen holds the names a watch delivered before it synced; nil
		// once it has.
		seen := map[string]bool{}
		rewatch := func() {
			cancel()
			changes, cancel = s.rewatch(ctx, reg)
			seen = map[string]bool{}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-changes:
				switch {
				case !ok:
					if ctx.Err() == nil {
						rewatch()
					}
				case c.Op == namespaces.RegistrySynced:
					if seen != nil {
						s.forgetUnseen(ctx, seen)
						seen = nil
					}
					if synced != nil {
						close(synced)
						synced = nil
					}
				default:
					if seen != nil {
						seen[c.Name] = true
					}
					s.change(ctx, c)
				}
			case <-retry.C:
				s.retryFailed(ctx)
			case <-takeOver.C:
				s.retryStandby(ctx)
			case <-check.C:
				if n := nc.Stats().Reconnects; n != reconnects && nc.IsConnected() {
					reconnects = n
					s.log.Info("NATS reconnected: reading the namespace registry anew")
					rewatch()
				}
			}
		}
	}()
	return nil
}

// startWatch starts a watch of reg that ends with ctx or cancel.
func (s *namespaceSet) startWatch(ctx context.Context, reg *namespaces.Registry) (<-chan namespaces.RegistryChange, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(ctx)
	changes, err := reg.Watch(wctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return changes, cancel, nil
}

// rewatch starts another watch, retrying until it starts or ctx ends (then
// it returns a nil channel, which blocks, and a no-op cancel).
func (s *namespaceSet) rewatch(ctx context.Context, reg *namespaces.Registry) (<-chan namespaces.RegistryChange, context.CancelFunc) {
	for {
		changes, cancel, err := s.startWatch(ctx, reg)
		if err == nil {
			return changes, cancel
		}
		s.log.Warn("watch the namespace registry", "err", err, "retry_in", retryFailedEvery)
		select {
		case <-ctx.Done():
			return nil, func() {}
		case <-time.After(retryFailedEvery):
		}
	}
}

// forgetUnseen stops the namespaces this process serves or retries that a
// new watch did not deliver: they were deleted while it was not watching.
// Their data is kept, as with a delete.
func (s *namespaceSet) forgetUnseen(ctx context.Context, seen map[string]bool) {
	s.mu.Lock()
	var gone []string
	for name := range s.served {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	for name := range s.failed {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.log.Info("namespace deleted while the registry was not watched", "namespace", name)
		if s.sec != nil {
			s.sec.removePolicy(name)
		}
		s.remove(ctx, name, false)
	}
}

// change applies one registry change.
func (s *namespaceSet) change(ctx context.Context, c namespaces.RegistryChange) {
	// The policy first: a namespace is never served under an older one.
	s.sec.applyPolicy(c)
	switch {
	case c.Err != nil:
		s.log.Error("registry entry skipped", "namespace", c.Name, "revision", c.Entry.Revision, "err", c.Err)
	case c.Op == namespaces.RegistryPut:
		s.put(ctx, c.Entry)
	case c.Op == namespaces.RegistryDelete, c.Op == namespaces.RegistryPurge:
		s.remove(ctx, c.Name, c.Op == namespaces.RegistryPurge)
	}
}

// put serves e: opens it if new, reconfigures it if changed. A namespace
// that fails is recorded and retried.
func (s *namespaceSet) put(ctx context.Context, e namespaces.Registered) {
	opCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	s.mu.Lock()
	sv, retry := s.served[e.Namespace.Name], s.failed[e.Namespace.Name].err != nil
	s.mu.Unlock()
	var err error
	if sv == nil {
		err = s.open(opCtx, e)
	} else if sv.entry.Revision != e.Revision || retry {
		err = s.update(opCtx, sv, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.changes.WithLabelValues("put", "failed").Inc()
		s.gw.MarkUnserved(e.Namespace.Name)
		s.failed[e.Namespace.Name] = failure{entry: e, err: err}
		if s.served[e.Namespace.Name] != nil {
			s.log.Error("namespace served, but not all of its revision is applied", "namespace", e.Namespace.Name, "revision", e.Revision, "err", err, "retry_in", retryFailedEvery)
			return
		}
		s.log.Error("namespace not served", "namespace", e.Namespace.Name, "revision", e.Revision, "err", err, "retry_in", retryFailedEvery)
		return
	}
	s.changes.WithLabelValues("put", "ok").Inc()
	delete(s.failed, e.Namespace.Name)
}

func (s *namespaceSet) retryFailed(ctx context.Context) {
	s.mu.Lock()
	var retry []namespaces.Registered
	for _, f := range s.failed {
		retry = append(retry, f.entry)
	}
	s.mu.Unlock()
	for _, e := range retry {
		s.put(ctx, e)
	}
}
