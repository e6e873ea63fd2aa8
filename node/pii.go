package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/pii"
)

// devKEKFile is the development key encryption key Prism makes in the data
// directory when no --pii-kek is given.
const devKEKFile = "pii-kek.key"

// kekSpec is the KEK the node uses: c.PIIKEK, or the development key file
// in the data directory (made if missing), and whether it is that one.
func (c Config) kekSpec() (spec string, dev bool, err error) {
	if c.PIIKEK != "" {
		return c.PIIKEK, false, nil
	}
	path := filepath.Join(c.DataDir, devKEKFile)
	if err := pii.GenerateKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", true, fmt.Errorf("--pii-kek: make the development key %s: %w", path, err)
	}
	return "file:" + path, true, nil
}

// openKEK opens a KEK spec (file:PATH or awskms:KEY, see pii.OpenKEK);
// AWS credentials, region and endpoint come from the SDK's default chain.
// A KMS key that is to wrap new data keys is checked at once (a wrap and
// an unwrap), so a wrong key, region or permission fails the start.
func openKEK(ctx context.Context, spec string, check bool) (pii.KEK, error) {
	k, err := pii.OpenKEK(ctx, spec)
	if err != nil {
		return nil, err
	}
	if km, ok := k.(*pii.KMSKEK); ok && check {
		if err := km.Check(ctx); err != nil {
			return nil, fmt.Errorf("KMS key %s cannot wrap and unwrap a data key (it needs kms:Encrypt, kms:Decrypt and kms:DescribeKey): %w", km.ARN(), err)
		}
	}
	return k, nil
}

// startKeyring opens the PII keyring over js with the configured KEK and
// the previous ones (for keys not yet rewrapped).
func startKeyring(ctx context.Context, js jetstream.JetStream, c Config, replicas int, log *slog.Logger) (*pii.Keyring, bool, error) {
	spec, dev, err := c.kekSpec()
	if err != nil {
		return nil, dev, err
	}
	kek, err := openKEK(ctx, spec, true)
	if err != nil {
		return nil, dev, fmt.Errorf("--pii-kek: %w", err)
	}
	cfg := pii.KeyringConfig{KEK: kek, Replicas: replicas, Logger: log.With("component", "pii")}
	for _, p := range c.PIIPreviousKEKs {
		prev, err := openKEK(ctx, p, false)
		if err != nil {
			return nil, dev, fmt.Errorf("--pii-previous-kek: %w", err)
		}
		cfg.Previous = append(cfg.Previous, prev)
	}
	k, err := retrySetup(ctx, func(ctx context.Context) (*pii.Keyring, error) { return pii.OpenKeyring(ctx, js, cfg) })
	if err != nil {
		return nil, dev, err
	}
	if dev {
		log.Warn("pii: the key encryption key is the development key in the data directory, beside the data it protects; give --pii-kek (a key file on another disk, or awskms:KEY) in production", "kek", k.KEKID())
	} else {
		log.Info("pii: key encryption key", "kek", k.KEKID())
	}
	return k, dev, nil
}

// piiMode is the line /readyz reports about PII keys.
func (n *Node) piiMode() string {
	if n.keyring == nil {
		return "pii: no keyring"
	}
	if n.devKEK {
		return "pii: kek " + n.keyring.KEKID() + " (development key in the data directory)"
	}
	return "pii: kek " + n.keyring.KEKID()
}

// Keyring is the node's PII keyring.
func (n *Node) Keyring() *pii.Keyring { return n.keyring }
