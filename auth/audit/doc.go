// Package audit is Prism's audit trail: one record per data access (each
// read, write, mutate, subscribe, admin action, replay and migration
// step) on the JetStream stream PRISM_AUDIT in Prism's account, written
// by a Writer on the request path and read back by List and Follow (and
// `prism audit`).
//
// # Stream
//
// EnsureStream creates or updates PRISM_AUDIT: subjects
// prism.$audit.<ns>.<op...> (package subjects; "_" for an operation on no
// namespace), file storage, MaxAge the configured retention (default 90
// days), old records discarded first, deletes and purges of single
// records denied so that nothing but age removes a record.
//
// # Record format
//
// Each message holds one record or more of its subject's namespace and
// operation, one JSON object a line (JSON Lines), for SIEM tools. A
// message holds the records of a subject sent together: those that
// arrived while the subject's previous message waited for its ack, and
// records no one waits for (reads'), which linger up to WithLinger (2 ms)
// for others of their subject. The field names
// are stable; every field is always present:
//
//	time        string   RFC 3339 with nanoseconds, UTC: when the access happened
//	principal   object   who: {"name": string, "groups": [string], "via": string}
//	                     (via is how it was authenticated: oidc, tls, nkey,
//	                     creds, service, none)
//	namespace   string   the namespace, "" for an operation on none
//	op          string   the operation, e.g. write.put, read.get, admin.ns.apply
//	count       integer  how many records the operation touched
//	ids         [string] the records' ids, hashed: hex of the first 16 bytes of
//	                     SHA-256(namespace + 0x00 + id); at most 100 (MaxIDs),
//	                     count says how many there were
//	code        string   the outcome: OK or the error code, e.g. PERMISSION_DENIED
//	latency_us  integer  how long the operation took, in microseconds
//	request_id  string   the request's id (the Prism-Request-Id header)
//	trace_id    string   the W3C trace id, "" when the request was not traced
//	seq         integer  the stream sequence of the write, 0 when there is none
//	node        string   the Prism process that served the request
//
// A record never holds a value, a key or id other than hashed, or a
// credential.
//
// # Failing closed
//
// A Writer keeps every record in a bounded spool until JetStream has
// stored it, retrying with backoff. While records fail to store, or the
// spool is full, Healthy returns an UNAVAILABLE error and the gateway
// refuses new requests. A record that finds the spool full waits for room
// while the stream keeps storing (load), and is dropped when records are
// failing (an outage) or when its request ends first; a dropped record is
// counted in prism_audit_dropped_total, which must stay 0, and its
// operation must not complete. A write is acknowledged only once its
// record is stored; a read is answered once its record is spooled, so a
// crash loses the records of reads in their last moments (the linger and
// the ack's round trip), never a write's.
//
// # Hashed ids
//
// The hash is not keyed: whoever may read the audit stream can check
// whether a given id was accessed (HashID of a guess), which is what an
// investigation needs ("who read customer 4711?"), and can guess ids from
// a small space. The stream is readable only from Prism's account.
package audit
