package namespaces_test

import (
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

func graphNS() namespaces.Namespace {
	return namespaces.Namespace{Name: "social", Abstraction: namespaces.AbstractionGraph, Backend: "sqlite"}
}

func TestGraphNamespaceRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		change  func(*namespaces.Namespace)
		wantErr string
	}{
		{"defaults", func(*namespaces.Namespace) {}, ""},
		{"postgres", func(n *namespaces.Namespace) { n.Backend = "postgres" }, ""},
		{"auto", func(n *namespaces.Namespace) { n.Backend = namespaces.BackendAuto }, ""},
		{"limits", func(n *namespaces.Namespace) { n.Graph = namespaces.GraphConfig{MaxDepth: 10, MaxResults: 100_000} }, ""},
		{"natskv", func(n *namespaces.Namespace) { n.Backend = "natskv" }, "does not serve abstraction graph; use sqlite, postgres"},
		{"depth too high", func(n *namespaces.Namespace) { n.Graph.MaxDepth = 11 }, "graph.max_depth 11: must be 1 to 10"},
		{"negative results", func(n *namespaces.Namespace) { n.Graph.MaxResults = -1 }, "graph.max_results -1"},
		{"results too high", func(n *namespaces.Namespace) { n.Graph.MaxResults = 100_001 }, "graph.max_results 100001"},
		{"graph section on keyvalue", func(n *namespaces.Namespace) {
			n.Abstraction, n.Graph.MaxDepth = namespaces.AbstractionKeyValue, 3
		}, "a graph section needs abstraction: graph"},
		{"pii", func(n *namespaces.Namespace) { n.Fields = namespaces.NewNames("email") }, "PII fields are not supported on abstraction graph"},
		{"publish_changes", func(n *namespaces.Namespace) { n.PublishChanges = true }, "publish_changes is not supported on abstraction graph"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := graphNS()
			c.change(&ns)
			err := ns.Validate()
			if (c.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, c.wantErr)
			}
		})
	}
}

// The plan shows a graph namespace's limits; changing them is live.
func TestGraphPlanShowsLimits(t *testing.T) {
	c := namespaces.Cluster{Nodes: 1}
	old := graphNS()
	p, err := namespaces.Derive(old, c)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]any{}
	for _, s := range p.Settings() {
		settings[s.Name] = s.Value
	}
	if settings["max_depth"] != 4 || settings["max_results"] != 1000 {
		t.Errorf("plan settings = %v, want max_depth 4 and max_results 1000", settings)
	}
	ns := old
	ns.Graph = namespaces.GraphConfig{MaxDepth: 6}
	np, err := namespaces.Derive(ns, c)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]namespaces.Change{}
	for _, ch := range namespaces.Diff(old, p, ns, np) {
		changes[ch.Field] = ch
	}
	for _, f := range []string{"graph.max_depth", "settings.max_depth"} {
		if ch, ok := changes[f]; !ok || ch.Effect != namespaces.EffectLive {
			t.Errorf("%s: %+v, want a live change", f, ch)
		}
	}
	if ch := changes["settings.max_depth"]; ch.To != "6" || !strings.Contains(ch.Reason, "graph.max_depth") {
		t.Errorf("settings.max_depth = %+v", ch)
	}
	kv, err := namespaces.Derive(namespaces.Namespace{Name: "kv", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range kv.Settings() {
		if s.Name == "max_depth" || s.Name == "max_results" {
			t.Errorf("a keyvalue plan shows %s", s.Name)
		}
	}
}
