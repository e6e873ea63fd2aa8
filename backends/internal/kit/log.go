package kit

import (
	"fmt"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// CheckLogBatch is CheckKeyValueBatch for Log: every change must be
// non-nil with an event of a non-empty key, carry its CloudEvent id
// (cloud_event["ce-id"]), and have no header whose name is empty or
// reserved (reserved is subjects.IsReservedLogHeader; kit imports only
// proto).
func CheckLogBatch(changes []*prismv1.LogChange, through uint64, reserved func(name string) bool) *Fault {
	return checkBatch(changes, through, func(c *prismv1.LogChange) string { return checkLogChange(c, reserved) })
}

// checkLogChange returns why c cannot be applied, or "" if it can.
func checkLogChange(c *prismv1.LogChange, reserved func(string) bool) string {
	ev := c.GetEvent()
	if ev == nil {
		return "nil event"
	}
	if len(ev.GetKey()) == 0 {
		return "empty key"
	}
	if c.GetCloudEvent()["ce-id"] == "" {
		return "no ce-id"
	}
	for name := range ev.GetHeaders() {
		if name == "" || reserved(name) {
			return fmt.Sprintf("header name %q is empty or reserved", name)
		}
	}
	return ""
}
