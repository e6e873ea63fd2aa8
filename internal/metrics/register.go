// Package metrics holds what Prism's packages share about Prometheus
// collectors.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the collector registered
// before under the same name and labels (a component of the same name
// made again, e.g. a restarted projector). Any other failure is kept in
// *errp, the first one only, and c is returned, so that a constructor
// registers all its collectors and checks once.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}
