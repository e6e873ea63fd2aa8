package kit

import (
	"strings"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func logChange(seq uint64, key string, headers map[string]string) *prismv1.LogChange {
	return &prismv1.LogChange{Seq: seq, Event: &prismv1.LogEvent{Key: []byte(key), Headers: headers}, CloudEvent: map[string]string{"ce-id": "x"}}
}

func TestCheckLogBatch(t *testing.T) {
	reserved := func(name string) bool { return strings.HasPrefix(name, "ce-") }
	noID := logChange(1, "k", nil)
	noID.CloudEvent = nil
	tests := []struct {
		name       string
		changes    []*prismv1.LogChange
		through    uint64
		wantChange bool
		wantReason string // "" for a valid batch
	}{
		{"valid", []*prismv1.LogChange{logChange(1, "k", map[string]string{"h": "v"}), logChange(3, "j", nil)}, 3, false, ""},
		{"empty", nil, 5, false, ""},
		{"nil change", []*prismv1.LogChange{nil}, 1, true, "nil change"},
		{"nil event", []*prismv1.LogChange{{Seq: 1, CloudEvent: map[string]string{"ce-id": "x"}}}, 1, true, "nil event"},
		{"empty key", []*prismv1.LogChange{logChange(1, "", nil)}, 1, true, "empty key"},
		{"no ce-id", []*prismv1.LogChange{noID}, 1, true, "no ce-id"},
		{"reserved header", []*prismv1.LogChange{logChange(1, "k", map[string]string{"ce-x": "v"})}, 1, true, "reserved"},
		{"empty header name", []*prismv1.LogChange{logChange(1, "k", map[string]string{"": "v"})}, 1, true, "reserved"},
		{"seq above through", []*prismv1.LogChange{logChange(4, "k", nil)}, 3, false, "above through"},
		{"decreasing", []*prismv1.LogChange{logChange(2, "k", nil), logChange(1, "k", nil)}, 3, false, "after seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := CheckLogBatch(tt.changes, tt.through, reserved)
			if tt.wantReason == "" {
				if f != nil {
					t.Fatalf("fault %+v, want none", f)
				}
				return
			}
			if f == nil || f.Change != tt.wantChange || !strings.Contains(f.Reason, tt.wantReason) {
				t.Fatalf("fault %+v, want change=%v reason containing %q", f, tt.wantChange, tt.wantReason)
			}
		})
	}
}
