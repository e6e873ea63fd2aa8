// Package kit holds the backend-neutral pieces the Prism backends share:
// page sizes and page tokens (whose formats every backend must produce byte
// for byte, so a token stays valid whichever backend serves the next page),
// TimeSeries positions, ranges and page windows, the stored encoding of an
// event's tags, the validation of KeyValue and TimeSeries batches and of
// read requests, and two helpers for stored and returned values
// (NonNil, SplitTime).
//
// kit imports only proto; only packages under backends/ may import it. It
// defines no error a client sees: it reports what is wrong (a
// *RequestError, a *Fault), and each backend turns that into its own
// sentinels with an Errors value, so errors.Is identity stays each
// backend's own while the texts stay alike.
package kit
