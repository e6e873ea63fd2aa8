package namespaces_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

// The YAML of prism ns get -o yaml is the declaration alone, a file that
// loads back to the same namespace.
func TestWriteYAMLLoadsBack(t *testing.T) {
	ns := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
	var out strings.Builder
	if err := (namespaces.AdminNamespace{Registered: namespaces.Registered{Namespace: ns, Revision: 9, AppliedBy: "alice@host"}}).WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "alice") || strings.Contains(out.String(), "revision") {
		t.Fatalf("the YAML holds more than the declaration:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "orders.yaml")
	if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := namespaces.LoadNamespaceFile(path)
	if err != nil {
		t.Fatalf("load the YAML back: %v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(got, ns) {
		t.Fatalf("loaded back %+v, want %+v", got, ns)
	}
}

// prism ns get shows the build state of each entity index per target.
func TestWriteTextShowsIndexStates(t *testing.T) {
	ns := namespaces.Namespace{Name: "profiles", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}
	n := namespaces.AdminNamespace{Registered: namespaces.Registered{Namespace: ns, Revision: 3}, Targets: []namespaces.TargetStatus{{
		Target: "sqlite", Role: "primary", State: "running", Indexes: []namespaces.IndexStatus{
			{Index: "created_at", State: "ready"},
			{Index: "note", State: "building", Done: 1500, Total: 40000},
			{Index: "by_mail", State: "failed", Detail: `records "a" and "b" hold one value`},
		}}}}
	var out strings.Builder
	if err := n.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	want := `indexes of sqlite: created_at ready; note building 1500/40000; by_mail FAILED (records "a" and "b" hold one value)`
	if !strings.Contains(out.String(), want) {
		t.Errorf("prism ns get lacks %q:\n%s", want, out.String())
	}
}
