package gateway

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Limits of KeyValue requests. A request that breaks one gets
// INVALID_ARGUMENT and nothing is written.
const (
	// MaxIDBytes is the longest record id; ids must not be empty.
	MaxIDBytes = 1024
	// MaxKeyBytes is the longest item key. An empty key is allowed (a plain
	// key/value record is an id with one item).
	MaxKeyBytes = 1024
	// MaxValueBytes is the largest item value (512 KiB).
	MaxValueBytes = 512 << 10
	// MaxBatchBytes is the largest sum of the event payloads of one mutate
	// (8 MiB); an atomic batch is staged in the server's memory.
	MaxBatchBytes = 8 << 20
	// MaxItems is the most items one put may write, and the most keys one
	// delete or get may name.
	MaxItems = 1000
	// MaxMutations is the most mutations of one mutate. JetStream accepts
	// atomic batches of at most 1000 messages and one is reserved for the
	// idempotency marker.
	MaxMutations = 999
	// MaxPageSize is the largest page_size of get and scan; 0 means the
	// backend's default.
	MaxPageSize = 1000
	// MaxPageTokenLen is the longest page_token. A page token is the
	// unpadded base64url of the last key or id of the previous page, or
	// emptyKeyPageToken when that was the empty key.
	MaxPageTokenLen   = 2048
	emptyKeyPageToken = "~"
	// MaxIdempotencyTokenLen is the longest idempotency_token. Tokens are
	// printable ASCII without spaces ('!' to '~').
	MaxIdempotencyTokenLen = 128
	// MaxRevision is the largest expected_revision: JetStream sequences stay
	// far below it, larger values are a client bug.
	MaxRevision = math.MaxInt64
)

func validateID(what string, id []byte) error {
	if len(id) == 0 {
		return status.Invalidf("%s is empty; every record needs an id of 1 to %d bytes", what, MaxIDBytes)
	}
	if len(id) > MaxIDBytes {
		return status.Invalidf("%s is %d bytes; the limit is %d", what, len(id), MaxIDBytes)
	}
	return nil
}

func validateKey(what string, key []byte) error {
	if len(key) > MaxKeyBytes {
		return status.Invalidf("%s is %d bytes; the limit is %d", what, len(key), MaxKeyBytes)
	}
	return nil
}

func validateToken(what, token string) error {
	if len(token) > MaxIdempotencyTokenLen {
		return status.Invalidf("%s is %d bytes; the limit is %d", what, len(token), MaxIdempotencyTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < '!' || c > '~' {
			return status.Invalidf("%s has byte 0x%02x at %d; use printable ASCII without spaces", what, c, i)
		}
	}
	return nil
}

func validateRevision(what string, rev *uint64) error {
	if rev != nil && *rev > MaxRevision {
		return status.Invalidf("%s %d is not a stream sequence; use the revision a read or write returned, or 0 for a new record", what, *rev)
	}
	return nil
}

func validatePageSize(size uint32) error {
	if size > MaxPageSize {
		return status.Invalidf("page_size %d is too large; the limit is %d", size, MaxPageSize)
	}
	return nil
}

func validatePageToken(token string) error {
	if token == "" {
		return nil
	}
	if len(token) > MaxPageTokenLen {
		return status.Invalidf("page_token is %d characters; the limit is %d: pass next_page_token of the previous page unchanged", len(token), MaxPageTokenLen)
	}
	if token == emptyKeyPageToken {
		return nil
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(b) == 0 {
		return status.Invalidf("page_token %q is not a token this gateway issued: pass next_page_token of the previous page unchanged", token)
	}
	return nil
}

// validatePut checks a put; prefix names it inside a mutate ("mutation 3: ").
func validatePut(prefix string, req *prismv1.PutRequest) error {
	if err := validateID(prefix+"id", req.GetId()); err != nil {
		return err
	}
	items := req.GetItems()
	if len(items) == 0 {
		return status.Invalidf("%sput of record %q has no items; write 1 to %d", prefix, req.GetId(), MaxItems)
	}
	if len(items) > MaxItems {
		return status.Invalidf("%sput of record %q has %d items; the limit is %d", prefix, req.GetId(), len(items), MaxItems)
	}
	seen := make(map[string]int, len(items))
	for i, it := range items {
		n := i + 1
		if err := validateKey(fmt.Sprintf("%skey of item %d", prefix, n), it.GetKey()); err != nil {
			return err
		}
		if it.GetChunked() != nil {
			if err := validateChunked(prefix, n, it); err != nil {
				return err
			}
		} else if len(it.GetValue()) > MaxValueBytes {
			return status.Invalidf("%svalue of item %d is %d bytes; the limit is %d inline: upload a larger value in parts (prism.<ns>.write.upload, ADR 025)", prefix, n, len(it.GetValue()), MaxValueBytes)
		}
		if it.GetExpireTime() != nil {
			return status.Invalidf("%sitem %d sets expire_time, which Prism sets; use ttl", prefix, n)
		}
		if ttl := it.GetTtl(); ttl != nil {
			if err := ttl.CheckValid(); err != nil {
				return status.Invalidf("%sttl of item %d is not a valid duration: %v", prefix, n, err)
			}
			if ttl.AsDuration() <= 0 {
				return status.Invalidf("%sttl of item %d is %v; it must be positive (omit it for no expiry)", prefix, n, ttl.AsDuration())
			}
		}
		if prev, dup := seen[string(it.GetKey())]; dup {
			return status.Invalidf("%sitem %d repeats the key %q of item %d", prefix, n, it.GetKey(), prev)
		}
		seen[string(it.GetKey())] = n
	}
	return validateRevision(prefix+"expected_revision", req.ExpectedRevision)
}

// validateDelete checks a delete; prefix names it inside a mutate.
func validateDelete(prefix string, req *prismv1.DeleteRequest) error {
	if err := validateID(prefix+"id", req.GetId()); err != nil {
		return err
	}
	if len(req.GetKeys()) > MaxItems {
		return status.Invalidf("%sdelete of record %q names %d keys; the limit is %d (omit keys to delete the whole record)", prefix, req.GetId(), len(req.GetKeys()), MaxItems)
	}
	for i, k := range req.GetKeys() {
		if err := validateKey(fmt.Sprintf("%skey %d", prefix, i+1), k); err != nil {
			return err
		}
	}
	return validateRevision(prefix+"expected_revision", req.ExpectedRevision)
}

func validatePutRequest(req *prismv1.PutRequest) error {
	if err := validatePut("", req); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateDeleteRequest(req *prismv1.DeleteRequest) error {
	if err := validateDelete("", req); err != nil {
		return err
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateMutateRequest(req *prismv1.MutateRequest) error {
	muts := req.GetMutations()
	if len(muts) == 0 {
		return status.Invalidf("mutate has no mutations; send 1 to %d", MaxMutations)
	}
	if len(muts) > MaxMutations {
		return status.Invalidf("mutate has %d mutations; the limit is %d", len(muts), MaxMutations)
	}
	if err := validateToken("idempotency_token", req.GetIdempotencyToken()); err != nil {
		return err
	}
	written := make(map[string]int, len(muts))
	for i, m := range muts {
		n := i + 1
		prefix := fmt.Sprintf("mutation %d: ", n)
		var (
			id  []byte
			rev *uint64
		)
		switch {
		case m.GetPut() != nil:
			p := m.GetPut()
			if err := validatePut(prefix, p); err != nil {
				return err
			}
			if p.GetIdempotencyToken() != "" {
				return status.Invalidf("%sput carries its own idempotency_token; set it once on the mutate request", prefix)
			}
			id, rev = p.GetId(), p.ExpectedRevision
		case m.GetDelete() != nil:
			d := m.GetDelete()
			if err := validateDelete(prefix, d); err != nil {
				return err
			}
			if d.GetIdempotencyToken() != "" {
				return status.Invalidf("%sdelete carries its own idempotency_token; set it once on the mutate request", prefix)
			}
			id, rev = d.GetId(), d.ExpectedRevision
		default:
			return status.Invalidf("%sneither put nor delete is set", prefix)
		}
		// JetStream cannot check an expected revision of a record an earlier
		// message of the same batch writes.
		if prev, ok := written[string(id)]; ok && rev != nil {
			return status.Invalidf("%sexpected_revision of record %q cannot be checked: mutation %d of this request writes the same record; put the condition on mutation %d", prefix, id, prev, prev)
		}
		if _, ok := written[string(id)]; !ok {
			written[string(id)] = n
		}
	}
	return nil
}

func validateGetRequest(req *prismv1.GetRequest) error {
	if err := validateID("id", req.GetId()); err != nil {
		return err
	}
	if len(req.GetKeys()) > 0 && req.GetRange() != nil {
		return status.Invalidf("get of record %q sets both keys and range; set at most one", req.GetId())
	}
	if len(req.GetKeys()) > MaxItems {
		return status.Invalidf("get of record %q names %d keys; the limit is %d", req.GetId(), len(req.GetKeys()), MaxItems)
	}
	for i, k := range req.GetKeys() {
		if err := validateKey(fmt.Sprintf("key %d", i+1), k); err != nil {
			return err
		}
	}
	if rg := req.GetRange(); rg != nil {
		if err := validateKey("range start", rg.GetStart()); err != nil {
			return err
		}
		if err := validateKey("range end", rg.GetEnd()); err != nil {
			return err
		}
		if len(rg.GetEnd()) > 0 && bytes.Compare(rg.GetStart(), rg.GetEnd()) >= 0 {
			return status.Invalidf("range start %q is not before end %q; the range is [start, end), and an empty end is unbounded", rg.GetStart(), rg.GetEnd())
		}
	}
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validatePageToken(req.GetPageToken())
}

func validateScanRequest(req *prismv1.ScanRequest) error {
	if err := validatePageSize(req.GetPageSize()); err != nil {
		return err
	}
	return validatePageToken(req.GetPageToken())
}
