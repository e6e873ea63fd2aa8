package replay_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/replay"
)

func TestFormatID(t *testing.T) {
	tests := []struct {
		id   []byte
		want string
	}{
		{[]byte("user-42"), "user-42"},
		{[]byte("日本語"), "日本語"},
		{[]byte{}, "hex:"},
		{nil, "hex:"},
		{[]byte{0x00, 0xff}, "hex:00ff"},
		{[]byte("two words"), "hex:74776f20776f726473"},
		{[]byte("tab\t"), "hex:74616209"},
		{[]byte("hex:41"), "hex:6865783a3431"}, // not to be read as the id "A"
		{[]byte{0xe6, 0x97}, "hex:e697"},       // cut UTF-8
	}
	for _, tt := range tests {
		if got := replay.FormatID(tt.id); got != tt.want {
			t.Errorf("FormatID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func failedReport() replay.Report {
	return replay.Report{
		Checkpoint: 1234, OldRecords: 100, NewRecords: 99, Compared: 101, Matched: 97,
		Missing: 2, Extra: 1, Differing: 1, Rechecked: 3, RecheckRounds: 1, Ranges: 2, RangesMismatched: 1,
		Duration:   1500 * time.Millisecond,
		MissingIDs: []string{"a-1"}, ExtraIDs: []string{"hex:00"}, DifferingIDs: []string{"c-3"}, UnsettledIDs: []string{},
	}
}

func TestReportPassed(t *testing.T) {
	for name, r := range map[string]replay.Report{
		"missing":   {Missing: 1},
		"extra":     {Extra: 1},
		"differing": {Differing: 1},
		"unsettled": {Unsettled: 1},
	} {
		if r.Passed() {
			t.Errorf("%s: passed", name)
		}
	}
	if !(replay.Report{Compared: 10, Matched: 10, Rechecked: 4}).Passed() {
		t.Error("all matched: not passed")
	}
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(failedReport())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"passed": false, "checkpoint": 1234.0, "compared": 101.0, "matched": 97.0, "missing": 2.0,
		"extra": 1.0, "differing": 1.0, "unsettled": 0.0, "rechecked": 3.0, "duration_ns": 1.5e9,
	} {
		if m[key] != want {
			t.Errorf("%s = %v, want %v (%s)", key, m[key], want, b)
		}
	}
	if ids, _ := m["missing_ids"].([]any); len(ids) != 1 || ids[0] != "a-1" {
		t.Errorf("missing_ids = %v, want [a-1]", m["missing_ids"])
	}
	var back replay.Report
	if err := json.Unmarshal(b, &back); err != nil || back.Missing != 2 || back.ExtraIDs[0] != "hex:00" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestReportTable(t *testing.T) {
	var b strings.Builder
	if err := failedReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `Result:               FAILED
Checkpoint:           1234
Duration:             1.5s
Records (old / new):  100 / 99
Compared:             101
Matched:              97
Missing:              2  a-1 …
Extra:                1  hex:00
Differing:            1  c-3
Unsettled:            0
Rechecked:            3 in 1 rounds
Ranges (mismatched):  2 (1)
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
