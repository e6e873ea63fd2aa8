package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
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

// README's table of prism serve flags has a row for every flag serve
// shows in --help.
func TestReadmeListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	serve, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		if row := "| `--" + f.Name + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %q for prism serve --%s", row, f.Name)
		}
	})
}
