package main

import (
	"strings"
	"testing"
)

// --help must not print a DSN from the environment: it may hold a password.
func TestHelpDoesNotPrintTheDSN(t *testing.T) {
	t.Setenv("PRISM_POSTGRES_DSN", "postgres://prism:s3cr3t-for-test@db/prism")
	for _, cmd := range []string{"serve", "bench"} {
		root := newRootCmd()
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{cmd, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "--postgres-dsn") {
			t.Fatalf("%s --help lacks --postgres-dsn:\n%s", cmd, out.String())
		}
		if strings.Contains(out.String(), "s3cr3t-for-test") {
			t.Errorf("%s --help prints the DSN from PRISM_POSTGRES_DSN", cmd)
		}
	}
}
