package namespaces_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/namespaces"
)

func TestDeriveLimits(t *testing.T) {
	base := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite"}
	tests := []struct {
		name                     string
		needs                    namespaces.Needs
		share                    int
		write, read, inFlight, p int
		reasonHas                string
	}{
		{name: "no needs: no limits of its own", inFlight: 0, p: 100, reasonHas: "fair"},
		{name: "write_rps only", needs: namespaces.Needs{WriteRPS: 500}, write: 1000, inFlight: 100, p: 100, reasonHas: "100ms"},
		{name: "small rates get the minimum quota", needs: namespaces.Needs{WriteRPS: 5, ReadRPS: 5}, write: 10, read: 10, inFlight: namespaces.MinInFlightQuota, p: 100},
		{name: "a long p99 sizes the quota", needs: namespaces.Needs{ReadRPS: 1000, P99Latency: namespaces.Duration(time.Second)}, read: 2000, inFlight: 2000, p: 100, reasonHas: "p99_latency 1s"},
		{name: "principal share", needs: namespaces.Needs{WriteRPS: 100}, share: 25, write: 200, inFlight: 20, p: 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := base
			ns.Needs, ns.Limits.PrincipalShare = tt.needs, tt.share
			p, err := namespaces.Derive(ns, namespaces.Cluster{Nodes: 1})
			if err != nil {
				t.Fatal(err)
			}
			l := p.Limits
			if l.WriteRate.Value != tt.write || l.ReadRate.Value != tt.read || l.InFlight.Value != tt.inFlight || l.PrincipalShare.Value != tt.p {
				t.Errorf("limits write %d read %d in-flight %d share %d, want %d %d %d %d", l.WriteRate.Value, l.ReadRate.Value, l.InFlight.Value, l.PrincipalShare.Value, tt.write, tt.read, tt.inFlight, tt.p)
			}
			if !strings.Contains(l.InFlight.Reason, tt.reasonHas) {
				t.Errorf("in-flight reason %q lacks %q", l.InFlight.Reason, tt.reasonHas)
			}
			rows := map[string]bool{}
			for _, s := range p.Settings() {
				rows[s.Name] = s.Reason != ""
			}
			for _, name := range []string{"write_rate_limit", "read_rate_limit", "in_flight_quota", "principal_share"} {
				if !rows[name] {
					t.Errorf("plan has no %s with a reason", name)
				}
			}
		})
	}
}

func TestPrincipalShareValidated(t *testing.T) {
	for _, s := range []int{-1, 101} {
		ns := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Limits: namespaces.Limits{PrincipalShare: s}}
		if err := ns.Validate(); err == nil || !strings.Contains(err.Error(), "limits.principal_share") {
			t.Errorf("principal_share %d: %v, want an error naming limits.principal_share", s, err)
		}
	}
}
