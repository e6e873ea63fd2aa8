// Package deps pins modules that packages under construction will import.
// Delete it once every module here is imported by real code.
package deps

import (
	_ "github.com/cloudevents/sdk-go/v2"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/synadia-io/orbit.go/jetstreamext"
	_ "go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite"
)
