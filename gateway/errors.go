package gateway

import "errors"

// ErrGatewayClosed is returned by Start on a gateway that was drained, and by
// Start called twice.
var ErrGatewayClosed = errors.New("gateway: already started or drained")
