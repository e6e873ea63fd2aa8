package namespaces

import (
	"strings"
	"testing"
)

// Backend neptune serves graph namespaces only.
func TestNeptuneBackendGraphOnly(t *testing.T) {
	for _, c := range []struct {
		abstraction string
		wantErr     bool
	}{
		{AbstractionGraph, false},
		{AbstractionKeyValue, true},
		{AbstractionTimeSeries, true},
		{AbstractionEntity, true},
	} {
		err := Namespace{Name: "g", Abstraction: c.abstraction, Backend: "neptune"}.Validate()
		if (err != nil) != c.wantErr {
			t.Errorf("abstraction %s on neptune: %v, want error %v", c.abstraction, err, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "neptune") {
			t.Errorf("abstraction %s: the error %q does not name the backend", c.abstraction, err)
		}
	}
}
