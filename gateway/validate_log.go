package gateway

import (
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Limits of Log requests. A request that breaks one gets INVALID_ARGUMENT
// and nothing is written. Besides these, the key is 1 to MaxIDBytes bytes,
// the value at most MaxValueBytes, the event of one append at most
// namespaces.MaxEventBytes, and idempotency_token as for KeyValue.
const (
	// MaxLogHeaders is the most headers one record may carry.
	MaxLogHeaders = 64
	// MaxLogHeaderNameBytes is the longest header name; names must not be
	// empty nor reserved (subjects.IsReservedLogHeader).
	MaxLogHeaderNameBytes = 128
	// MaxLogHeaderValueBytes is the longest header value.
	MaxLogHeaderValueBytes = 4096
	// MaxFetchRecords is the largest max_records of a fetch; 0 means 100.
	MaxFetchRecords = 1000
)

func validateLogAppendRequest(req *prismv1.LogAppendRequest) error {
	key := req.GetKey()
	if len(key) == 0 {
		return status.Invalidf("key is empty; every record needs a key of 1 to %d bytes (records of one key stay in order)", MaxIDBytes)
	}
	if len(key) > MaxIDBytes {
		return status.Invalidf("key is %d bytes; the limit is %d", len(key), MaxIDBytes)
	}
	if n := len(req.GetValue()); n > MaxValueBytes {
		return status.Invalidf("value is %d bytes; the limit is %d", n, MaxValueBytes)
	}
	if n := len(req.GetHeaders()); n > MaxLogHeaders {
		return status.Invalidf("%d headers; the limit is %d", n, MaxLogHeaders)
	}
	for name, v := range req.GetHeaders() {
		switch {
		case name == "":
			return status.Invalidf("a header has an empty name; names are 1 to %d bytes", MaxLogHeaderNameBytes)
		case len(name) > MaxLogHeaderNameBytes:
			return status.Invalidf("header name %.32q… is %d bytes; the limit is %d", name, len(name), MaxLogHeaderNameBytes)
		case subjects.IsReservedLogHeader(name):
			return status.Invalidf("header name %q is reserved: names starting with ce- or prism-, and content-type, are Prism's", name)
		case len(v) > MaxLogHeaderValueBytes:
			return status.Invalidf("value of header %q is %d bytes; the limit is %d", name, len(v), MaxLogHeaderValueBytes)
		}
	}
	return validateToken("idempotency_token", req.GetIdempotencyToken())
}

func validateLogFetchRequest(req *prismv1.LogFetchRequest) error {
	switch {
	case req.GetPartition() < 0:
		return status.Invalidf("partition %d is negative; partitions count from 0", req.GetPartition())
	case len(req.GetKey()) > MaxIDBytes:
		return status.Invalidf("key is %d bytes; the limit is %d", len(req.GetKey()), MaxIDBytes)
	case len(req.GetKey()) > 0 && req.GetPartition() != 0:
		return status.Invalidf("key and partition %d are both set; set one: the key names its partition", req.GetPartition())
	case req.GetOffset() < 0:
		return status.Invalidf("offset %d is negative; offsets count from 0", req.GetOffset())
	case req.GetEndOffset() != 0 && req.GetEndOffset() <= req.GetOffset():
		return status.Invalidf("end_offset %d is not above offset %d; the range is [offset, end_offset), and 0 leaves it open", req.GetEndOffset(), req.GetOffset())
	case req.GetMaxRecords() > MaxFetchRecords:
		return status.Invalidf("max_records %d is too large; the limit is %d", req.GetMaxRecords(), MaxFetchRecords)
	}
	return nil
}
