package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KEK is a key encryption key: it wraps and unwraps data keys. ID names
// it in every wrapped key, so that a rotated KEK can still unwrap what
// the previous one wrapped. Implementations are safe for concurrent use.
type KEK interface {
	ID() string
	Wrap(dek []byte) ([]byte, error)
	Unwrap(wrapped []byte) ([]byte, error)
}

// ErrBadKey is returned for key material that is not a 256-bit key.
var ErrBadKey = errors.New("pii: not a 256-bit key")

// FileKEK is a KEK held in a local file: 32 random bytes, hex-encoded
// (development; production uses a KMS). It wraps with AES-256-GCM.
type FileKEK struct {
	id   string
	aead cipher.AEAD
}

// GenerateKeyFile writes a new random key to path (0600), refusing to
// overwrite one.
func GenerateKeyFile(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	defer clear(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("pii: key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("pii: key file %s: %w", path, err)
	}
	return f.Close()
}

// LoadFileKEK reads the key file at path. Its ID is "file:" and the first
// 8 bytes of the key's SHA-256, hex: it names the key, never reveals it.
// Errors: the file cannot be read, or does not hold a hex 256-bit key
// (ErrBadKey); the key never appears in an error.
func LoadFileKEK(path string) (*FileKEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pii: key file: %w", err)
	}
	defer clear(b)
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("pii: key file %s: %w (want 64 hex digits)", path, ErrBadKey)
	}
	defer clear(key)
	return newFileKEK(key)
}

func newFileKEK(key []byte) (*FileKEK, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	return &FileKEK{id: "file:" + hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ID names the key.
func (k *FileKEK) ID() string { return k.id }

// Wrap encrypts dek, bound to this KEK's id.
func (k *FileKEK) Wrap(dek []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, dek, []byte(k.id)), nil
}

// Unwrap decrypts what Wrap returned. Errors: ErrDecrypt when wrapped was
// not wrapped by this key or was changed.
func (k *FileKEK) Unwrap(wrapped []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(wrapped) < n+k.aead.Overhead() {
		return nil, ErrDecrypt
	}
	dek, err := k.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(k.id))
	if err != nil {
		return nil, ErrDecrypt
	}
	return dek, nil
}

// String names the key without its material.
func (k *FileKEK) String() string { return "pii.FileKEK(" + k.id + ")" }

// GoString is String, so that %#v prints no key either.
func (k *FileKEK) GoString() string { return k.String() }

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// InitKeyFile writes a new key file at path (GenerateKeyFile) and tells
// out how to serve with it, as prism keys init-kek does.
func InitKeyFile(path string, out io.Writer) error {
	if err := GenerateKeyFile(path); err != nil {
		return err
	}
	k, err := LoadFileKEK(path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "wrote %s (%s); keep it off the data disk and serve with --pii-kek file:%s\n", path, k.ID(), path)
	return err
}
