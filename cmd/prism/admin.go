package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
)

// adminFlags are the flags of the commands that talk to a running Prism
// over its admin API.
type adminFlags struct {
	Conn    natsconn.Options
	timeout time.Duration
}

func (f *adminFlags) register(cmd *cobra.Command) {
	f.Conn.Register(cmd.Flags(), "NATS URL of the running Prism")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for each admin request")
}

// admin is a session with a running Prism's admin API.
type admin struct {
	*namespaces.AdminClient
	ctx     context.Context // bounds the command: a few admin calls
	timeout time.Duration   // --timeout, of each call
}

// session connects to the running Prism; done closes the session. A
// request the NATS server refuses to let the credential publish ends the
// session at once (natsconn.ConnectGuarded), rather than at the timeout.
func (f *adminFlags) session(cmd *cobra.Command) (a admin, done func(), err error) {
	tctx, cancelTimeout := context.WithTimeout(cmd.Context(), 3*f.timeout)
	conn := f.Conn
	conn.Timeout, conn.Name = f.timeout, "prism-cli"
	nc, ctx, closeNC, err := conn.ConnectGuarded(tctx, "planning, applying, deleting and migrating a namespace need its admin: permission or a global admin (docs/security.md)")
	if err != nil {
		cancelTimeout()
		return a, nil, err
	}
	return admin{namespaces.NewAdminClient(nc, f.timeout), ctx, f.timeout}, func() { closeNC(); cancelTimeout() }, nil
}

// adminCommand completes cmd as a command of the admin API: the admin
// flags, and a RunE that opens a session, runs run in it and closes it.
func adminCommand(cmd *cobra.Command, run func(cmd *cobra.Command, args []string, a admin) error) *cobra.Command {
	var f adminFlags
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		a, done, err := f.session(cmd)
		if err != nil {
			return err
		}
		defer done()
		return natsconn.Refused(a.ctx, run(cmd, args, a))
	}
	f.register(cmd)
	return cmd
}

// loadSpecs reads the namespace file of a command's -f, or (with dir)
// every namespace file of the directory it names.
func loadSpecs(cmd *cobra.Command, path string, dir bool) ([]namespaces.Namespace, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: -f NAMESPACE.yaml is required", cmd.Name())
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() || !dir {
		ns, err := namespaces.LoadNamespaceFile(path)
		return []namespaces.Namespace{ns}, err
	}
	specs, err := namespaces.LoadNamespaces(path)
	if err == nil && len(specs) == 0 {
		err = fmt.Errorf("%s: -f %s: no namespace files (*.yaml) found", cmd.Name(), path)
	}
	return specs, err
}
