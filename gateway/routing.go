package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/prism-data/prism/namespaces"
)

// ReadTarget is one projection target as the gateway uses it: the reader
// of the namespace's abstraction and the progress of its projection.
type ReadTarget struct {
	// Name is the target's name (Target.Name), for logs and metrics.
	Name string
	// KeyValue reads a keyvalue namespace; nil for the others.
	KeyValue KeyValueReader
	// TimeSeries reads a timeseries namespace; nil for the others.
	TimeSeries TimeSeriesReader
	// Entity reads an entity namespace; nil for the others.
	Entity EntityReader
	// Graph reads a graph namespace; nil for the others.
	Graph GraphReader
	// Applied is the progress of the target's projection.
	Applied AppliedWaiter
}

// Routing is where a namespace's reads go while it migrates.
type Routing struct {
	// Primary serves the reads.
	Primary ReadTarget
	// Shadow, when set, is the other target: a sampled fraction
	// (ShadowSample, 0 to 1) of keyvalue gets is also read from it, off
	// the request path, and the two answers compared.
	Shadow *ReadTarget
	// ShadowSample is the fraction of gets compared against Shadow.
	ShadowSample float64
	// FenceShadow makes strong writes wait until Shadow applied them too,
	// so that a later switch of Primary to Shadow (or back) never serves a
	// read that misses an acknowledged strong write.
	FenceShadow bool
}

// SetRouting routes the reads of the registered namespace name as r says.
// When r.Primary is another target than the one serving now, it first
// waits, bounded by ctx, until the new target applied everything the old
// one had, so no reader sees the namespace go back in time; reads keep
// being served by the old target meanwhile and are never refused. The
// read cache, if any, is emptied when the primary changes. It returns an
// error if name is not registered, r does not fit its abstraction, or ctx
// ends before the new target caught up (nothing changes then).
func (g *Gateway) SetRouting(ctx context.Context, name string, r Routing) error {
	cur, ok := g.namespaces.get(name)
	if !ok {
		return fmt.Errorf("gateway: namespace %s is not registered", name)
	}
	if err := r.check(cur.Abstraction); err != nil {
		return fmt.Errorf("gateway: namespace %s: %w", name, err)
	}
	if r.Primary.Applied != cur.applied {
		if err := r.Primary.Applied.WaitApplied(ctx, cur.applied.Applied()); err != nil {
			return fmt.Errorf("gateway: namespace %s: target %s did not catch up with %s: %w", name, r.Primary.Name, cur.target, err)
		}
	}
	return g.namespaces.swap(name, func(e *namespaceEntry) {
		moved := e.applied != r.Primary.Applied
		e.target = r.Primary.Name
		e.applied = r.Primary.Applied
		if r.Primary.KeyValue != nil {
			e.reader = r.Primary.KeyValue
		}
		if r.Primary.TimeSeries != nil {
			e.tsReader = r.Primary.TimeSeries
		}
		if r.Primary.Entity != nil {
			e.enReader = r.Primary.Entity
		}
		if r.Primary.Graph != nil {
			e.grReader = r.Primary.Graph
		}
		e.shadow, e.fence = nil, nil
		if r.Shadow != nil {
			sh := *r.Shadow
			e.shadow = &shadowTarget{ReadTarget: sh, sample: r.ShadowSample}
			if r.FenceShadow {
				e.fence = sh.Applied
			}
		}
		if moved && e.cache != nil {
			e.cache.reset(g.opts.clock)
		}
	})
}

func (r Routing) check(abstraction string) error {
	targets := []*ReadTarget{&r.Primary}
	if r.Shadow != nil {
		targets = append(targets, r.Shadow)
	}
	for _, t := range targets {
		if t.Applied == nil {
			return fmt.Errorf("target %s has no applied waiter", t.Name)
		}
		switch abstraction {
		case namespaces.AbstractionKeyValue:
			if t.KeyValue == nil {
				return fmt.Errorf("target %s has no keyvalue reader", t.Name)
			}
		case namespaces.AbstractionTimeSeries:
			if t.TimeSeries == nil {
				return fmt.Errorf("target %s has no timeseries reader", t.Name)
			}
		case namespaces.AbstractionEntity:
			if t.Entity == nil {
				return fmt.Errorf("target %s has no entity reader", t.Name)
			}
		case namespaces.AbstractionGraph:
			if t.Graph == nil {
				return fmt.Errorf("target %s has no graph reader", t.Name)
			}
		default:
			return errors.New("only keyvalue, timeseries, entity and graph namespaces can be routed")
		}
	}
	if r.ShadowSample < 0 || r.ShadowSample > 1 {
		return fmt.Errorf("shadow sample %v is not between 0 and 1", r.ShadowSample)
	}
	return nil
}

// swap replaces the entry of name by a copy changed by change.
func (r *namespaceTable) swap(name string, change func(*namespaceEntry)) error {
	r.mu.Lock()
	old, ok := r.m[name]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("gateway: namespace %s is not registered", name)
	}
	e := *old
	change(&e)
	r.m[name] = &e
	r.mu.Unlock()
	r.notify(name)
	return nil
}

// strongApplied is what a strong write waits for: the primary projection,
// and the shadow too while a migration fences them.
func (e *namespaceEntry) strongApplied() AppliedWaiter {
	if e.fence == nil {
		return e.applied
	}
	return bothApplied{e.applied, e.fence}
}

// bothApplied is the progress of two projections: the lower of the two.
type bothApplied [2]AppliedWaiter

func (b bothApplied) Applied() uint64 { return min(b[0].Applied(), b[1].Applied()) }

func (b bothApplied) WaitApplied(ctx context.Context, seq uint64) error {
	if err := b[0].WaitApplied(ctx, seq); err != nil {
		return err
	}
	return b[1].WaitApplied(ctx, seq)
}
