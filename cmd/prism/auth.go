package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/subjects"
)

func newAuthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Set up authentication: development credentials, inbox prefixes, the NATS server configuration",
		Long:  "auth prepares a secured Prism; docs/security.md explains the model.",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAuthInitCmd(), newAuthInboxCmd(), newAuthServerConfigCmd())
	return cmd
}

func newAuthInitCmd() *cobra.Command {
	var (
		dataDir string
		users   []string
		hosts   []string
		force   bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write development credentials and auth.yaml into <data-dir>/auth",
		Long: `init writes development credentials into <data-dir>/auth (0700, files 0600):
a CA, a localhost server certificate, the callout, user issuer and service
keys, a certificate, nkey and .creds per user, and auth.yaml (docs/security.md).`,
		Example: "  prism auth init --data-dir ./prism-data --user admin:admins --user orders-svc:writers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := devinit.Options{Force: force, Hosts: hosts}
			for _, u := range users {
				opts.Users = append(opts.Users, devinit.ParseUser(u))
			}
			res, err := devinit.Init(filepath.Join(dataDir, "auth"), opts)
			if err != nil {
				return err
			}
			return res.WriteText(cmd.OutOrStdout(), dataDir)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data-dir", "./prism-data", "prism serve's data directory; the files go to <data-dir>/auth")
	fl.StringSliceVar(&users, "user", nil, "user to issue credentials for, NAME or NAME:GROUP[+GROUP] (repeatable; default admin:admins and app)")
	fl.StringSliceVar(&hosts, "host", nil, "extra DNS name or IP of the server certificate (besides localhost, 127.0.0.1, ::1)")
	fl.BoolVar(&force, "force", false, "replace existing material (every credential issued before stops working)")
	return cmd
}

func newAuthInboxCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inbox NAME",
		Short: "Print the reply-subject prefix principal NAME must connect with",
		Long: `inbox prints the only reply prefix principal NAME may subscribe under in a
secured deployment; pass it to your client (nats --inbox-prefix, nats.go
CustomInboxPrefix). Prism's own commands derive it.`,
		Example: `  nats req prism.orders.read.scan '{}' --inbox-prefix "$(prism auth inbox app)" ...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), subjects.InboxPrefix(args[0]))
			return err
		},
	}
}

func newAuthServerConfigCmd() *cobra.Command {
	var (
		authConfig, listen, storeDir string
		syncAlways, verify           bool
	)
	cmd := &cobra.Command{
		Use:   "server-config",
		Short: "Print the nats-server configuration of a secured Prism (accounts, imports, auth callout)",
		Long: `server-config prints what an external NATS server runs for Prism: the
PRISM, APP and system accounts, exports, imports and the auth callout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := node.ServerConfigText(authConfig, listen, storeDir, syncAlways, verify)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), text)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&authConfig, "auth-config", "./prism-data/auth/auth.yaml", "the auth configuration prism serve runs with")
	fl.StringVar(&listen, "listen", "0.0.0.0:4222", "the client listener of the server")
	fl.StringVar(&storeDir, "store-dir", "/var/lib/nats/jetstream", "the server's JetStream store")
	fl.BoolVar(&syncAlways, "sync-always", false, "fsync every write before acknowledging it")
	fl.BoolVar(&verify, "verify-clients", false, "require a client certificate from every client (certificate authentication on a server without Prism's optional verification)")
	return cmd
}
