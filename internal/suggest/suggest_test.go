package suggest

import "testing"

func TestNearest(t *testing.T) {
	fields := []string{"name", "abstraction", "backend", "consistency", "retention", "needs"}
	tests := []struct {
		name   string
		word   string
		cands  []string
		want   string
		wantOK bool
	}{
		{"one substitution", "consistancy", fields, "consistency", true},
		{"transposition", "bakcend", fields, "backend", true},
		{"missing letter short word", "nme", fields, "name", true},
		{"two edits on a short word is too far", "nm", fields, "", false},
		{"case-insensitive", "BACKEND_", fields, "backend", true},
		{"abbreviation", "abstr", fields, "abstraction", true},
		{"nothing near", "zzzzzz", fields, "", false},
		{"exact match is not a suggestion", "name", []string{"name"}, "", false},
		{"empty word", "", fields, "", false},
		{"subcommand typo", "lst", []string{"list", "get", "history", "delete"}, "list", true},
		{"tie goes to the first", "gat", []string{"get", "cat"}, "get", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Nearest(tt.word, tt.cands)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("Nearest(%q) = %q, %v; want %q, %v", tt.word, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"consistancy", "consistency", 1}, {"héllo", "hello", 1},
	} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
