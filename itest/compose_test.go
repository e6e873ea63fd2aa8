package itest

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/prism-data/prism/namespaces"
)

// No Docker engine runs in CI: the stack of docker-compose.yml is checked
// by loading it with compose-spec's own loader (interpolation, anchors,
// the schema) and asserting what it must hold, and its NATS and Prism
// configuration by running deploy/init.sh with the prism binary and
// parsing what it renders with nats-server's own parser.

// composeServices are the services of docker-compose.yml.
var composeServices = []string{"kafka", "nats-1", "nats-2", "nats-3", "postgres", "prism-1", "prism-2", "prism-auth", "prometheus"}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv([]string{"POSTGRES_PASSWORD=" + rand.Text()}),
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func TestComposeStack(t *testing.T) {
	p := loadCompose(t)
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, composeServices) {
		t.Fatalf("services %v, want %v", got, composeServices)
	}
	for name, s := range p.Services {
		// Every long-running service says when it is healthy.
		if name != "prism-auth" && (s.HealthCheck == nil || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s has no health check", name)
		}
		// Secure by default: nothing published beyond loopback.
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s on %q, want 127.0.0.1 only", name, port.Published, strconv.Itoa(int(port.Target)), port.HostIP)
			}
		}
		// Every file mounted from the repository exists.
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			} else if _, ok := p.Volumes[v.Source]; v.Type == types.VolumeTypeVolume && !ok {
				t.Errorf("%s mounts undeclared volume %s", name, v.Source)
			}
		}
	}
	wants := map[string]map[string]string{
		"nats-1":     {"prism-auth": types.ServiceConditionCompletedSuccessfully},
		"prism-1":    {"nats-1": types.ServiceConditionHealthy, "nats-2": types.ServiceConditionHealthy, "nats-3": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy, "kafka": types.ServiceConditionHealthy},
		"prism-2":    {"nats-3": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy},
		"prometheus": {"prism-1": types.ServiceConditionHealthy, "prism-2": types.ServiceConditionHealthy},
	}
	for svc, deps := range wants {
		for dep, cond := range deps {
			if got := p.Services[svc].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s %q, want %q", svc, dep, got, cond)
			}
		}
	}
	// The data survives a restart: JetStream, PostgreSQL, Kafka and each
	// Prism keep their state in named volumes.
	for svc, target := range map[string]string{"nats-1": "/data", "nats-2": "/data", "nats-3": "/data", "postgres": "/var/lib/postgresql/data", "kafka": "/var/lib/kafka/data", "prism-1": "/data", "prism-2": "/data"} {
		if !slices.ContainsFunc(p.Services[svc].Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == target
		}) {
			t.Errorf("%s keeps %s in no named volume", svc, target)
		}
	}
}

// TestComposePrismCommand: both Prism services run the same command, and
// every flag in it is one prism serve has; the namespace it applies plans
// on the stack (three nodes, PostgreSQL).
func TestComposePrismCommand(t *testing.T) {
	p := loadCompose(t)
	cmd := []string(p.Services["prism-1"].Command)
	if !slices.Equal(cmd, p.Services["prism-2"].Command) || len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("prism commands %v and %v, want the same prism serve", cmd, p.Services["prism-2"].Command)
	}
	help, err := exec.Command(prismBin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("prism serve --help: %v\n%s", err, help)
	}
	for _, arg := range cmd[1:] {
		if strings.HasPrefix(arg, "--") && !strings.Contains(string(help), "  "+arg+" ") {
			t.Errorf("prism serve has no flag %s", arg)
		}
	}
	for _, want := range []string{"--auth-config", "--nkey", "--tls-ca", "--pii-kek", "--nodes"} {
		if !slices.Contains(cmd, want) {
			t.Errorf("the prism command lacks %s: %v", want, cmd)
		}
	}
	list, err := namespaces.LoadNamespaces("../deploy/namespaces")
	if err != nil || len(list) == 0 {
		t.Fatalf("deploy/namespaces: %v (%d namespaces)", err, len(list))
	}
	for _, ns := range list {
		plan, err := namespaces.Derive(ns, namespaces.Cluster{Nodes: 3, Postgres: true})
		if err != nil {
			t.Fatalf("plan %s on the stack: %v", ns.Name, err)
		}
		if plan.Replicas.Value != 3 {
			t.Errorf("%s: %d replicas on the 3-node cluster, want 3", ns.Name, plan.Replicas.Value)
		}
	}
}

// TestComposeNATSConfig runs deploy/init.sh as the prism-auth service does
// (against a temporary directory for the volume) and parses each NATS
// node's configuration with nats-server's parser: the accounts, the auth
// callout, TLS, JetStream and the cluster with its route credentials.
func TestComposeNATSConfig(t *testing.T) {
	// The containers' layout: the volume at /prism, each node's file at
	// /etc/nats/nats.conf, which includes ../../prism/….
	root := t.TempDir()
	vol, etc := filepath.Join(root, "prism"), filepath.Join(root, "etc", "nats")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		cmd := exec.Command("sh", "../deploy/init.sh")
		cmd.Env = append(os.Environ(), "PRISM_AUTH_DIR="+vol, "PATH="+filepath.Dir(prismBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("deploy/init.sh: %v\n%s", err, out)
		}
	}
	run()
	routes, err := os.ReadFile(filepath.Join(vol, "cluster-routes.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// A second run keeps every credential.
	run()
	if again, _ := os.ReadFile(filepath.Join(vol, "cluster-routes.conf")); string(again) != string(routes) {
		t.Fatal("a second run of deploy/init.sh replaced the route credentials")
	}
	for _, secret := range []string{"auth/issuer.nk", "auth/service.nk", "auth/ca-key.pem", "kek.hex", "cluster-auth.conf"} {
		fi, err := os.Stat(filepath.Join(vol, secret))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v, want readable by its owner only", secret, fi.Mode().Perm())
		}
	}
	for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
		t.Run(node, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("..", "deploy", "nats", node+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(etc, node+".conf")
			if err := os.WriteFile(conf, src, 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := server.ProcessConfigFile(conf)
			if err != nil {
				t.Fatalf("nats-server cannot load %s: %v", node, err)
			}
			if o.ServerName != node || o.Cluster.Name != "prism" || o.Cluster.Port != 6222 || len(o.Routes) != 3 {
				t.Errorf("server %q cluster %q port %d routes %d, want %s in cluster prism on 6222 with 3 routes", o.ServerName, o.Cluster.Name, o.Cluster.Port, len(o.Routes), node)
			}
			if o.Cluster.Username != "route" || o.Cluster.Password == "" || o.Routes[0].User.Username() != "route" {
				t.Error("the cluster's routes are not authenticated")
			}
			if !o.JetStream || o.StoreDir != "/data/jetstream" || o.TLSConfig == nil || o.AuthCallout == nil || o.HTTPHost != "127.0.0.1" {
				t.Errorf("jetstream %t store %q tls %t callout %t monitoring on %q", o.JetStream, o.StoreDir, o.TLSConfig != nil, o.AuthCallout != nil, o.HTTPHost)
			}
			var accounts []string
			for _, a := range o.Accounts {
				accounts = append(accounts, a.Name)
			}
			for _, want := range []string{"PRISM", "APP", "SYS"} {
				if !slices.Contains(accounts, want) {
					t.Errorf("accounts %v lack %s", accounts, want)
				}
			}
		})
	}
}
