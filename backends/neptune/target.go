package neptune

// GraphName is the name under which target target of namespace ns keeps
// its graph in a Neptune cluster (the prism_ns of its nodes): ns for the
// target named "neptune" (a namespace's first Neptune target) or "", and
// ns/target for any other, so two targets of one namespace (a migration)
// can share a cluster. Namespace names hold no '/'.
func GraphName(ns, target string) string {
	if target == "" || target == "neptune" {
		return ns
	}
	return ns + "/" + target
}
