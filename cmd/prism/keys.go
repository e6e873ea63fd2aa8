package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the keys that encrypt PII: list, rotate, rewrap, make a KEK",
		Long: `keys manages the PII data keys of a running Prism's namespaces, wrapped by
the key encryption key (KEK) of prism serve --pii-kek (docs/security.md).`,
	}
	cmd.AddCommand(newKeysListCmd(), newKeysRotateCmd(), newKeysRewrapCmd(), newKeysInitKEKCmd())
	return cmd
}

func newKeysListCmd() *cobra.Command {
	return replyCommand(&cobra.Command{
		Use:   "list NAMESPACE",
		Short: "List a namespace's data keys (ids and KEKs, never key material)",
		Args:  cobra.ExactArgs(1),
	}, func(a admin, args []string) (namespaces.AdminKeysReply, error) { return a.Keys(a.ctx, args[0]) })
}

func newKeysRotateCmd() *cobra.Command {
	return replyCommand(&cobra.Command{
		Use:   "rotate NAMESPACE",
		Short: "Seal new PII values of a namespace under a new data key",
		Long: `rotate adds a data key to the namespace: new writes are sealed under it
(by every Prism process within a minute); values sealed before stay
readable under the key they name. Needs admin of the namespace.`,
		Args: cobra.ExactArgs(1),
	}, func(a admin, args []string) (namespaces.AdminKeysReply, error) {
		return a.RotateKey(a.ctx, args[0], namespaces.LocalUser())
	})
}

func newKeysRewrapCmd() *cobra.Command {
	return replyCommand(&cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key under the KEK Prism now runs with",
		Long: `rewrap changes the KEK without touching the data: start prism serve with
the new --pii-kek and the old one as --pii-previous-kek, run prism keys
rewrap, then drop --pii-previous-kek. Needs a global admin.`,
		Args: cobra.NoArgs,
	}, func(a admin, _ []string) (namespaces.AdminRewrapReply, error) { return a.Rewrap(a.ctx) })
}

func newKeysInitKEKCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init-kek FILE",
		Short: "Write a new random key encryption key file (0600) for --pii-kek file:FILE",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return pii.InitKeyFile(args[0], cmd.OutOrStdout()) },
	}
}

func newForgetCmd() *cobra.Command {
	return adminCommand(&cobra.Command{
		Use:   "forget NAMESPACE ID",
		Short: "Forget a record's personal data everywhere (crypto-shredding)",
		Long: `forget deletes the secret the record's PII values are sealed under: they can
never be read again, anywhere (backend, stream, replays, Kafka, backups); its
other fields and id stay. Needs admin of the namespace (docs/security.md).`,
		Args: cobra.ExactArgs(2),
	}, func(cmd *cobra.Command, args []string, a admin) error {
		r, err := a.Forget(a.ctx, args[0], []byte(args[1]), namespaces.LocalUser())
		if err != nil {
			return err
		}
		if !r.Forgotten {
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "record %q of %s holds no PII sealed by Prism; nothing to forget\n", args[1], args[0])
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "forgot the personal data of record %q of %s\n", args[1], args[0])
		return err
	})
}
