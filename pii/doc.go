// Package pii protects personal data (ADR 016): envelope encryption of
// PII field values, AES-256-GCM under record keys derived from a
// namespace's data key and the record's secret, bound to the namespace,
// record and field they belong to; data keys wrapped by a key encryption
// key (a key file or a KMS); the Keyring that keeps them in a KV bucket,
// rotates them, rewraps them and forgets a record by erasing its secret;
// and the masks a caller without read_pii sees.
package pii
