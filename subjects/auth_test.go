package subjects_test

import (
	"strings"
	"testing"

	"github.com/prism-data/prism/subjects"
)

func TestInboxPrefix(t *testing.T) {
	a, b := subjects.InboxPrefix("alice"), subjects.InboxPrefix("bob")
	if a == b {
		t.Fatalf("alice and bob share inbox prefix %s", a)
	}
	if a != subjects.InboxPrefix("alice") {
		t.Fatal("InboxPrefix is not deterministic")
	}
	rest, ok := strings.CutPrefix(a, "_INBOX.")
	if !ok || len(rest) != 16 || strings.ContainsAny(rest, ".*> ") || strings.ToLower(rest) != rest {
		t.Fatalf("InboxPrefix(alice) = %q: want _INBOX. and 16 lower-case subject-safe characters", a)
	}
}
