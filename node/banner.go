package node

import (
	"fmt"
	"io"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// WriteBanner writes what prism serve prints once the node serves: how
// many namespaces on which NATS URL, and a request to try on the first
// KeyValue one.
func (n *Node) WriteBanner(w io.Writer) error {
	url, served := n.URL(), n.Served()
	if _, err := fmt.Fprintf(w, "Prism is serving %d namespace(s) on NATS %s\n", len(served), url); err != nil {
		return err
	}
	for _, ns := range served {
		if ns.Abstraction == namespaces.AbstractionKeyValue {
			_, err := fmt.Fprintf(w, "  try: NATS_URL=%s nats req %s '{}'\n", url, subjects.Read(ns.Name, "scan"))
			return err
		}
	}
	return nil
}
