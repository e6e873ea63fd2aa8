package node

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// snapshot returns the served namespaces, in name order.
func (s *namespaceSet) snapshot() []*served {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*served, 0, len(s.served))
	for _, sv := range s.served {
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b *served) int { return strings.Compare(a.ns.Name, b.ns.Name) })
	return out
}

// status returns the state of namespace name's targets in this process,
// for the admin API: the one serving reads first.
func (s *namespaceSet) status(ctx context.Context, name string) []namespaces.TargetStatus {
	s.mu.Lock()
	sv, f := s.served[name], s.failed[name]
	s.mu.Unlock()
	switch {
	case sv != nil:
		var last uint64
		if info, err := s.js.Stream(ctx, subjects.Stream(name)); err == nil {
			last = info.CachedInfo().State.LastSeq
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []namespaces.TargetStatus
		for _, run := range sv.targets {
			st := namespaces.TargetStatus{Target: run.target.Name, Backend: run.target.Backend, Role: s.role(sv, run.target.Name), State: "running", Revision: sv.entry.Revision, Checkpoint: run.waiter.Applied(), StreamLast: last}
			if run.proj == nil {
				st.State = "standby"
			}
			if run.backfill != nil {
				if ts := run.backfill.Progress().Throttle; ts != nil {
					st.Throttle = &namespaces.ThrottleStatus{Rate: ts.Rate, MaxRate: ts.MaxRate, Reason: ts.Reason}
				}
			}
			if run.indexes != nil {
				st.Indexes = run.indexes.status()
			}
			if st.Role == "shadow" {
				st.ShadowReads = s.gw.ShadowReads(name)
			}
			if last > st.Checkpoint {
				st.Lag = last - st.Checkpoint
			}
			if f.err != nil {
				// Still serving the old revision; the new one is retried.
				st.Error = fmt.Sprintf("revision %d not applied: %v", f.entry.Revision, f.err)
			}
			out = append(out, st)
		}
		slices.SortFunc(out, func(a, b namespaces.TargetStatus) int {
			if (a.Role == "primary") != (b.Role == "primary") {
				if a.Role == "primary" {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Target, b.Target)
		})
		return out
	case f.err != nil:
		pt := f.entry.PrimaryTarget()
		return []namespaces.TargetStatus{{Target: pt.Name, Backend: pt.Backend, Role: "primary", State: "failed", Revision: f.entry.Revision, Error: f.err.Error()}}
	}
	return nil
}
