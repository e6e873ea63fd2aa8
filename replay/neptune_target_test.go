package replay_test

import (
	"testing"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/replay"
)

func TestResolveNeptuneTarget(t *testing.T) {
	n := namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "sqlite"}
	backend, target, err := replay.ResolveTarget(n, replay.TargetSpec{Name: "np", Backend: "neptune", EnvNeptuneEndpoint: "db.example:8182"})
	if err != nil || backend != "neptune" {
		t.Fatalf("ResolveTarget = %s, %v", backend, err)
	}
	if nt, ok := target.(replay.NeptuneTarget); !ok || nt.Endpoint != "db.example:8182" || nt.Graph != "social/np" {
		t.Errorf("target = %#v", target)
	}
	n.Backend = "neptune"
	if _, target, err := replay.ResolveTarget(n, replay.TargetSpec{Name: "neptune", EnvNeptuneEndpoint: "db.example:8182"}); err != nil || target.(replay.NeptuneTarget).Graph != "social" {
		t.Errorf("the namespace's own target = %#v, %v", target, err)
	}
	if _, _, err := replay.ResolveTarget(n, replay.TargetSpec{Name: "np"}); err == nil {
		t.Error("a neptune target without an endpoint was resolved")
	}
}
