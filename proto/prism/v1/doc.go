// Package prismv1 is Prism's wire API and event payloads, generated from
// the .proto files next to it by `make generate` (protoc-gen-go). Only this
// file is written by hand: never edit the *.pb.go files.
//
//   - errors.proto: the error reply and its stable codes.
//   - kv.proto: the KeyValue requests, replies and events.
//   - ts.proto: the TimeSeries requests, replies and events.
//   - entity.proto: the Entity requests, replies and events.
package prismv1
