package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/status"
)

// MaxIDs is the most hashed ids a record lists; Count says how many there
// were.
const MaxIDs = 100

// CodeOK is the code of an operation that succeeded.
const CodeOK = "OK"

// Record is one audited access. Its JSON form is the document the package
// comment describes; MarshalJSON and UnmarshalJSON convert.
//
// The record states the operation's outcome. When Writer.Record then
// fails, the caller tells its client that the outcome is unknown, but the
// record stays correct: the access happened.
type Record struct {
	// Time is when the access happened; Writer.Record sets it to now when
	// it is zero.
	Time time.Time
	// Principal is who made the request.
	Principal auth.Principal
	// Namespace is the namespace, "" for an operation on none.
	Namespace string
	// Op is the operation, e.g. "write.put"; see subjects.ValidateAuditOp.
	Op string
	// Count is how many records the operation touched. When it is less
	// than the number of ids (RawIDs, else IDs) it is raised to it.
	Count int
	// RawIDs are the ids of the records the operation touched, in clear,
	// for the encoding to hash: they are never stored, printed or
	// marshalled. When set they replace IDs.
	RawIDs [][]byte
	// IDs are the hashed ids (HashID), at most MaxIDs: what List and
	// Follow return, and what is stored when RawIDs is empty.
	IDs []string
	// Code is CodeOK or the status code name of the error, e.g.
	// "PERMISSION_DENIED"; see Code. Writer.Record sets it to CodeOK when
	// it is empty.
	Code string
	// Latency is how long the operation took (stored in microseconds).
	Latency time.Duration
	// RequestID is the request's id.
	RequestID string
	// TraceID is the request's trace id, if traced.
	TraceID string
	// Seq is the stream sequence of the write, 0 when there is none.
	Seq uint64
	// Node is the process that served the request; Writer.Record sets it to
	// the writer's node when it is empty.
	Node string
}

// Code is the audit code of an operation's error: CodeOK for nil, else the
// name of status.Convert(err)'s code, e.g. "PERMISSION_DENIED".
func Code(err error) string {
	if err == nil {
		return CodeOK
	}
	return status.Convert(err).Code.String()
}

// HashID is how an id appears in audit records: hex of the first 16 bytes
// of SHA-256(ns + 0x00 + id). The namespace salts the hash, so that the
// same id in two namespaces does not link.
func HashID(ns string, id []byte) string {
	return string(appendHashID(make([]byte, 0, 32), ns, id))
}

func appendHashID(b []byte, ns string, id []byte) []byte {
	var buf [256]byte
	in := append(buf[:0], ns...)
	in = append(in, 0)
	in = append(in, id...)
	sum := sha256.Sum256(in)
	return hex.AppendEncode(b, sum[:16])
}

// String is the record on one line, for people: time, principal,
// namespace ("-" for none), op, count, code and latency. It never shows
// ids.
func (r Record) String() string {
	ns := r.Namespace
	if ns == "" {
		ns = "-"
	}
	name := r.Principal.Name
	if name == "" {
		name = "-"
	}
	return fmt.Sprintf("%s  %-16s %-16s %-18s %5d  %-19s %v",
		r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), name, ns, r.Op, r.count(), r.Code, r.Latency.Round(time.Microsecond))
}

// GoString is String, so that not even %#v shows the ids in clear.
func (r Record) GoString() string { return r.String() }

// count is Count raised to the number of ids.
func (r *Record) count() int {
	n := len(r.IDs)
	if len(r.RawIDs) > 0 {
		n = len(r.RawIDs)
	}
	return max(r.Count, n)
}

// MarshalJSON encodes r as the package comment describes, hashing RawIDs
// when set.
func (r Record) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, r.sizeHint())), nil
}

// sizeHint is about the length of r's JSON.
func (r *Record) sizeHint() int {
	n := 256 + len(r.Principal.Name) + len(r.Namespace) + len(r.Op) + len(r.RequestID) + len(r.TraceID) + len(r.Node)
	for _, g := range r.Principal.Groups {
		n += len(g) + 3
	}
	ids := len(r.IDs)
	if len(r.RawIDs) > 0 {
		ids = len(r.RawIDs)
	}
	return n + min(ids, MaxIDs)*35
}

// appendJSON appends r's JSON to b. It is the one encoder, hand-written
// because the gateway encodes one record per request; TestRecordJSON and
// FuzzRecordJSON hold it to encoding/json's reading.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","principal":{"name":`...)
	b = appendString(b, r.Principal.Name)
	b = append(b, `,"groups":[`...)
	for i, g := range r.Principal.Groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, g)
	}
	b = append(b, `],"via":`...)
	b = appendString(b, r.Principal.Via)
	b = append(b, `},"namespace":`...)
	b = appendString(b, r.Namespace)
	b = append(b, `,"op":`...)
	b = appendString(b, r.Op)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(r.count()), 10)
	b = append(b, `,"ids":[`...)
	if len(r.RawIDs) > 0 {
		for i, id := range r.RawIDs[:min(len(r.RawIDs), MaxIDs)] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = appendHashID(b, r.Namespace, id)
			b = append(b, '"')
		}
	} else {
		for i, id := range r.IDs[:min(len(r.IDs), MaxIDs)] {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
	}
	b = append(b, `],"code":`...)
	b = appendString(b, r.Code)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, r.Latency.Microseconds(), 10)
	b = append(b, `,"request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"trace_id":`...)
	b = appendString(b, r.TraceID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"node":`...)
	b = appendString(b, r.Node)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it escapes
// '"', '\\', control characters, U+2028 and U+2029, and replaces each byte
// of invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// wireRecord is the JSON document, for decoding.
type wireRecord struct {
	Time      time.Time `json:"time"`
	Principal struct {
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
		Via    string   `json:"via"`
	} `json:"principal"`
	Namespace string   `json:"namespace"`
	Op        string   `json:"op"`
	Count     int      `json:"count"`
	IDs       []string `json:"ids"`
	Code      string   `json:"code"`
	LatencyUS int64    `json:"latency_us"`
	RequestID string   `json:"request_id"`
	TraceID   string   `json:"trace_id"`
	Seq       uint64   `json:"seq"`
	Node      string   `json:"node"`
}

// UnmarshalJSON decodes the document MarshalJSON makes. Unknown fields are
// ignored, missing ones left zero; RawIDs stays empty.
func (r *Record) UnmarshalJSON(data []byte) error {
	var w wireRecord
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = Record{
		Time:      w.Time,
		Principal: auth.Principal{Name: w.Principal.Name, Groups: w.Principal.Groups, Via: w.Principal.Via},
		Namespace: w.Namespace,
		Op:        w.Op,
		Count:     w.Count,
		IDs:       w.IDs,
		Code:      w.Code,
		Latency:   time.Duration(w.LatencyUS) * time.Microsecond,
		RequestID: w.RequestID,
		TraceID:   w.TraceID,
		Seq:       w.Seq,
		Node:      w.Node,
	}
	return nil
}
