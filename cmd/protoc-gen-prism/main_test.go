package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-data/prism/namespaces"
)

// TestPlugin runs protoc with this plugin and protoc-gen-go on
// testdata/widget, then checks that the generated Go compiles and vets
// with the client package, and that the generated spec loads, validates
// and decodes to the message's indexes.
func TestPlugin(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc is needed (Debian: apt-get install protobuf-compiler; .ci/run installs it): %v", err)
	}
	goGen, err := exec.LookPath("protoc-gen-go")
	if err != nil {
		if goGen, err = exec.LookPath(filepath.Join(goPath(t), "bin", "protoc-gen-go")); err != nil {
			t.Fatalf("protoc-gen-go is needed (make tools): %v", err)
		}
	}
	plugin := filepath.Join(t.TempDir(), "protoc-gen-prism")
	run(t, ".", "go", "build", "-o", plugin, ".")

	// The output must be inside the module for its imports to resolve;
	// testdata keeps it out of ./... and of the build.
	out := filepath.Join("testdata", "widget", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(out) })
	run(t, ".", protoc, "-I", "../../proto", "-I", "testdata",
		"--plugin=protoc-gen-prism="+plugin, "--plugin=protoc-gen-go="+goGen,
		"--go_out=paths=source_relative:"+out, "--prism_out=paths=source_relative:"+out,
		"testdata/widget/widget.proto")
	for _, f := range []string{"widget/widget.pb.go", "widget/widget.prism.go", "widget/widgets.namespace.yaml"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatalf("generated %s: %v", f, err)
		}
		if !strings.Contains(string(b), "DO NOT EDIT") {
			t.Errorf("%s does not say it is generated", f)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "widget", "part.namespace.yaml")); err == nil {
		t.Error("a spec was generated for Part, which has no primary key")
	}
	run(t, ".", "go", "vet", "./"+filepath.ToSlash(filepath.Join(out, "widget")))
	client, _ := os.ReadFile(filepath.Join(out, "widget", "widget.prism.go"))
	for _, m := range []string{"func (c *WidgetClient) Get(ctx context.Context, key int64", "QueryByColor(ctx context.Context, from, to string",
		"QueryByByWeight(ctx context.Context, from, to int32", "QueryByTag(ctx context.Context, from, to []byte", "QueryByKind(ctx context.Context, from, to Kind",
		"QueryByActive(ctx context.Context, from, to bool", "QueryBySerial(ctx context.Context, from, to uint64", "QueryByColorEqual(",
		"QueryByByShadeSize(ctx context.Context, shade string, from, to int32", "QueryByByShadeSizeEqual(ctx context.Context, shade string, v int32",
		"QueryByOwnerEqual(ctx context.Context, v string"} {
		if !strings.Contains(string(client), m) {
			t.Errorf("the client has no %q", m)
		}
	}

	ns, err := namespaces.LoadNamespaceFile(filepath.Join(out, "widget", "widgets.namespace.yaml"))
	if err != nil {
		t.Fatalf("the generated spec does not load: %v", err)
	}
	if ns.Name != "widgets" || ns.Backend != "sqlite" || ns.Consistency != namespaces.ReadYourWrites ||
		ns.Needs.WriteRPS != 100 || ns.Needs.ReadRPS != 2000 || ns.Needs.Durability != namespaces.Durable || ns.Needs.P99Latency.String() != "50ms" {
		t.Errorf("spec = %+v", ns)
	}
	s, err := ns.EntitySchema()
	if err != nil {
		t.Fatal(err)
	}
	if s.Message.FullName() != "test.widget.Widget" || s.Primary.Name() != "id" {
		t.Errorf("schema of %s keyed by %s", s.Message.FullName(), s.Primary.Name())
	}
	if got := strings.Join(s.IndexNames(), ","); got != "color,by_weight,tag,kind,active,serial,by_shade_size,owner" {
		t.Errorf("indexes %s", got)
	}
	if strings.Contains(string(client), "QueryByOwner(") {
		t.Error("a range query method for the blind index owner")
	}
}

func goPath(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
