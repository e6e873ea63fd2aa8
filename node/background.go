package node

import (
	"context"
	"time"

	"github.com/prism-data/prism/replay"
)

// startSweeper deletes expired items and events past retention every
// interval until stop.
func (s *namespaceSet) startSweeper(every time.Duration) {
	if every <= 0 {
		return
	}
	s.every(every, func(ctx context.Context) {
		for _, sv := range s.snapshot() {
			s.mu.Lock()
			name := sv.ns.Name
			var sweeps []*targetRun
			for _, run := range sv.targets {
				if run.sweep != nil {
					sweeps = append(sweeps, run)
				}
			}
			s.mu.Unlock()
			for _, run := range sweeps {
				if n, err := run.sweep(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("sweep", "namespace", name, "target", run.target.Name, "err", err)
				} else if n > 0 {
					s.log.Debug("sweep", "namespace", name, "target", run.target.Name, "deleted", n)
				}
			}
		}
	})
}

// startCompactor compacts namespace ns's stream in the background (ADR
// 012) until the returned func is called (it waits) or the set stops. Only
// the process that projects a namespace runs it; a rollup is a
// compare-and-set on the record's subject, so a second compactor
// elsewhere would be wasted work, never lost data.
func (s *namespaceSet) startCompactor(ns string) (func(), error) {
	opts := []replay.CompactOption{replay.WithCompactLogger(s.log)}
	if s.cfg.CompactCheckInterval > 0 {
		opts = append(opts, replay.WithCompactCheckInterval(s.cfg.CompactCheckInterval))
	}
	if s.cfg.CompactRate > 0 {
		opts = append(opts, replay.WithCompactRate(s.cfg.CompactRate))
	}
	if s.metrics != nil {
		opts = append(opts, replay.WithCompactRegisterer(s.metrics))
	}
	c, err := replay.NewCompactor(s.js, ns, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		_ = c.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

// every runs do every interval until stop.
func (s *namespaceSet) every(interval time.Duration, do func(ctx context.Context)) {
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			do(ctx)
		}
	}()
}
