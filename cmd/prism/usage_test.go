package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestUnknownSubcommandFails(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = success
	}{
		{"typo in ns", []string{"ns", "lst"}, `unknown command "lst" for "prism ns"; did you mean "list"?`},
		{"typo in migrate", []string{"migrate", "cutovr", "x"}, `did you mean "cutover"?`},
		{"nothing near", []string{"ns", "frobnicate"}, `unknown command "frobnicate" for "prism ns"`},
		{"root typo", []string{"srve"}, `unknown command "srve"`},
		{"group alone prints help", []string{"ns"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, tt.args...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !strings.Contains(out, "Available Commands") {
					t.Fatalf("no help printed: %q", out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnknownFlagSuggests(t *testing.T) {
	_, err := runCLI(t, "ns", "list", "--nats-ulr", "nats://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "did you mean --nats-url?") {
		t.Fatalf("err = %v", err)
	}
	_, err = runCLI(t, "ns", "list", "--zzzzzz")
	if err == nil || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "unknown flag: --zzzzzz") {
		t.Fatalf("err = %v", err)
	}
}

func TestVersionFlagPrintsStampedVersion(t *testing.T) {
	old := version
	version = "v9.9.9-test"
	t.Cleanup(func() { version = old })
	out, err := runCLI(t, "--version")
	if err != nil || !strings.Contains(out, "v9.9.9-test") {
		t.Fatalf("out = %q, err = %v", out, err)
	}
}

// A flag's default shows once: a usage string that names its default
// belongs to a flag whose default cobra does not print (its zero value),
// else help says "(default $NATS_URL, else …) (default "…")".
func TestFlagDefaultsShowOnce(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			fs := pflag.NewFlagSet("one", pflag.ContinueOnError)
			fs.AddFlag(f)
			rest := strings.Replace(fs.FlagUsages(), f.Usage, "", 1)
			if strings.Contains(strings.ToLower(f.Usage), "default") && strings.Contains(rest, "(default ") {
				t.Errorf("%s --%s names its default and cobra adds one:\n%s", c.CommandPath(), f.Name, fs.FlagUsages())
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}
