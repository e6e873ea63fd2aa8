package subjects

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Large values (ADR 025) are uploaded in parts to a blob stream of their
// own, one per KeyValue namespace: PRISM_BLOBS_<NS>, capturing
// prism.<ns>.blobs.<upload id>. A part is visible to nobody until a put
// event names its upload.

// BlobStream is the JetStream stream of the value parts of namespace ns.
func BlobStream(ns string) string { return "PRISM_BLOBS_" + strings.ToUpper(ns) }

// BlobStreamSubjects are the subjects captured by BlobStream(ns).
func BlobStreamSubjects(ns string) []string { return []string{Root + "." + ns + ".blobs.*"} }

// Blob is the subject of the parts of upload uploadID in namespace ns.
// Callers validate uploadID with ValidateUploadID first.
func Blob(ns, uploadID string) string { return Root + "." + ns + ".blobs." + uploadID }

// HeaderPart, on a blob message, is the index of the part it holds (from 0).
const HeaderPart = "Prism-Part"

// MaxUploadIDLen is the longest upload id.
const MaxUploadIDLen = 64

// ValidateUploadID reports whether id can be an upload id: 1 to 64
// characters of ASCII letters, digits, '-' and '_', so it is one subject
// token.
func ValidateUploadID(id string) error {
	if id == "" || len(id) > MaxUploadIDLen {
		return fmt.Errorf("upload_id %q: must be 1 to %d characters, as the upload request returned it", id, MaxUploadIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("upload_id %q: only letters, digits, '-' and '_' are allowed: pass the id the upload request returned", id)
		}
	}
	return nil
}

// TokenBucket is the NATS KV bucket that remembers the idempotency tokens
// of namespace ns for its retry horizon (ADR 025).
func TokenBucket(ns string) string { return "PRISM_TOKENS_" + strings.ToUpper(ns) }

// TokenKey is the key of idempotency token token in TokenBucket: its
// unpadded base64url, which only holds characters a KV key allows.
func TokenKey(token string) string { return "t" + base64.RawURLEncoding.EncodeToString([]byte(token)) }

// TokenSubject is the subject the record of token in TokenBucket(ns) is
// published to: the NATS KV layout, $KV.<bucket>.<key>.
func TokenSubject(ns, token string) string { return "$KV." + TokenBucket(ns) + "." + TokenKey(token) }
