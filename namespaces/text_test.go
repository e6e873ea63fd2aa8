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
