package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/prism-data/prism/namespaces"
)

// adminFlags are the flags of the commands that talk to a running Prism
// over its admin API.
type adminFlags struct {
	natsURL string
	timeout time.Duration
}

func (f *adminFlags) register(cmd *cobra.Command) {
	natsURLFlag(cmd.Flags(), &f.natsURL, "NATS URL of the running Prism")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for each admin request")
}

// natsURLFlag registers --nats-url on fs, described by what: $NATS_URL
// when set, else NATS's default URL, the default help shows.
func natsURLFlag(fs *pflag.FlagSet, p *string, what string) {
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	fs.StringVar(p, "nats-url", def, what+" ($NATS_URL when set)")
}

// session connects to the running Prism and returns an admin client, the
// context that bounds the command (a few admin calls) and what to call when
// done.
func (f *adminFlags) session(cmd *cobra.Command) (*namespaces.AdminClient, context.Context, func(), error) {
	nc, err := nats.Connect(f.natsURL, nats.Name("prism-cli"), nats.Timeout(f.timeout))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s (set --nats-url or NATS_URL to where prism serve runs): %w", f.natsURL, err)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*f.timeout)
	return namespaces.NewAdminClient(nc, f.timeout), ctx, func() { cancel(); nc.Close() }, nil
}

// specsSession reads the namespace file of a command's -f, or every
// namespace file of the directory it names, and starts a session.
func (f *adminFlags) specsSession(cmd *cobra.Command, path string) ([]namespaces.Namespace, *namespaces.AdminClient, context.Context, func(), error) {
	if path == "" {
		return nil, nil, nil, nil, fmt.Errorf("%s: -f NAMESPACE.yaml is required", cmd.Name())
	}
	var specs []namespaces.Namespace
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		if specs, err = namespaces.LoadNamespaces(path); err != nil {
			return nil, nil, nil, nil, err
		}
		if len(specs) == 0 {
			return nil, nil, nil, nil, fmt.Errorf("%s: -f %s: no namespace files (*.yaml) found", cmd.Name(), path)
		}
	} else {
		ns, err := namespaces.LoadNamespaceFile(path)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		specs = []namespaces.Namespace{ns}
	}
	client, ctx, done, err := f.session(cmd)
	return specs, client, ctx, done, err
}

// specSession reads the namespace file of a command's -f and starts a
// session (see session).
func (f *adminFlags) specSession(cmd *cobra.Command, file string) (namespaces.Namespace, *namespaces.AdminClient, context.Context, func(), error) {
	if file == "" {
		return namespaces.Namespace{}, nil, nil, nil, fmt.Errorf("%s: -f NAMESPACE.yaml is required", cmd.Name())
	}
	ns, err := namespaces.LoadNamespaceFile(file)
	if err != nil {
		return ns, nil, nil, nil, err
	}
	client, ctx, done, err := f.session(cmd)
	return ns, client, ctx, done, err
}

// whoAmI is what the CLI records as who applied a change: user@host.
func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host == "" {
		return name
	}
	return name + "@" + host
}
