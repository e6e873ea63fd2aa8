// Command protoc-gen-prism is a protoc plugin: for every message with a
// field marked (prism.index) = "primary" (proto/prism/options.proto) it
// generates
//
//   - <namespace>.namespace.yaml: the namespace spec, applyable with
//     `prism apply -f`, carrying the message's full name and its
//     FileDescriptorSet (base64, every imported file included) so the
//     gateway can decode the message in protojson and binary;
//   - <file>.prism.go, next to protoc-gen-go's output: a typed client per
//     message over the client package: Put, Get, Delete and a
//     QueryBy<Field> per secondary index.
//
// Usage:
//
//	protoc -I . -I <prism>/proto --go_out=. --prism_out=. your.proto
//
// It accepts the option paths=source_relative like protoc-gen-go. See
// docs/entity.md.
package main

import (
	"flag"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	var flags flag.FlagSet
	protogen.Options{ParamFunc: flags.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		for _, f := range gen.Files {
			if !f.Generate {
				continue
			}
			if err := generateFile(gen, f); err != nil {
				return err
			}
		}
		return nil
	})
}
