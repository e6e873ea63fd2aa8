// Package pii protects personal data: envelope encryption of PII field
// values (AES-256-GCM under per-namespace data keys, wrapped by a key
// encryption key from a key file or a KMS), bound to the namespace, record
// and field they belong to, and the masks a caller without read_pii sees.
//
// This is the first slice of the PII work (issue #15): the primitives,
// tested on their own. The gateway does not call them yet.
package pii
