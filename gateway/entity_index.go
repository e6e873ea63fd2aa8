package gateway

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/prism-data/prism/namespaces"
)

// EntityIndexKeys returns the key function of secondary index index of
// entity namespace ns for a backend that fills the index from its stored
// records (a live prism apply added it): the key of a stored record,
// computed from its bytes as a put computes it, and ok false when the
// record has no entry. Unique tells whether the index is unique.
//
// It returns an error if ns is not a valid entity namespace, has no such
// index, or the index is blind: its keys need the namespace's data key
// and the values sealed in the records, so prism plan refuses adding one
// live.
func EntityIndexKeys(ns namespaces.Namespace, index string) (key func(record []byte) ([]byte, bool, error), unique bool, err error) {
	s, err := ns.EntitySchema()
	if err != nil {
		return nil, false, fmt.Errorf("gateway: %w", err)
	}
	ix, ok := s.Index(index)
	switch {
	case !ok:
		return nil, false, fmt.Errorf("gateway: namespace %s has no index %s", ns.Name, index)
	case ix.Blind:
		return nil, false, fmt.Errorf("gateway: index %s of namespace %s is a blind index of a PII field; it is not filled from stored records", index, ns.Name)
	}
	typ := dynamicpb.NewMessageType(s.Message)
	return func(record []byte) ([]byte, bool, error) {
		m := typ.New()
		if err := proto.Unmarshal(record, m.Interface()); err != nil {
			return nil, false, fmt.Errorf("a stored record does not decode as %s: %w", s.Message.FullName(), err)
		}
		key, ok := plainIndexKey(ix, m)
		return key, ok, nil
	}, ix.Unique, nil
}
