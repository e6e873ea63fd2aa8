package subjects

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Event-subject tokens of the Graph abstraction: vertices and edges have
// subjects of their own, so that the last event of each is its state
// (compaction keeps it) and `nats stream view` shows which one changed.
const (
	AbstractionGraphVertex = "gv"
	AbstractionGraphEdge   = "ge"
)

// AbstractionGraph names the Graph abstraction where one name covers both
// event tokens (replay jobs, logs). It is not a subject token.
const AbstractionGraph = "graph"

// CloudEvents types of Graph events.
const (
	TypeGraphVertexUpsert = "io.prism.gv.upsert"
	TypeGraphVertexDelete = "io.prism.gv.delete"
	TypeGraphEdgeUpsert   = "io.prism.ge.upsert"
	TypeGraphEdgeDelete   = "io.prism.ge.delete"
)

// MaxGraphNameLen is the longest vertex id or label, in bytes.
const MaxGraphNameLen = 256

// ValidateGraphName reports why s is not a valid vertex id or label (what
// names it in the message): it must be 1 to MaxGraphNameLen bytes of
// UTF-8 without NUL. NUL separates the parts of an edge's subject id.
func ValidateGraphName(what, s string) error {
	switch {
	case s == "" || len(s) > MaxGraphNameLen:
		return fmt.Errorf("%s must be 1 to %d bytes, not %d", what, MaxGraphNameLen, len(s))
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s contains NUL", what)
	}
	return nil
}

// GraphEdgeID is the subject id of edge (from, label, to): the three
// joined by NUL.
func GraphEdgeID(from, label, to string) []byte {
	b := make([]byte, 0, len(from)+len(label)+len(to)+2)
	b = append(append(append(b, from...), 0), label...)
	return append(append(b, 0), to...)
}

// GraphVertexEvent is the event subject of vertex id in namespace ns:
// prism.<ns>.events.gv.<encoded id>.
func GraphVertexEvent(ns, id string) string {
	return Root + "." + ns + ".events." + AbstractionGraphVertex + "." + EncodeID([]byte(id))
}

// GraphEdgeEvent is the event subject of edge (from, label, to) in
// namespace ns: prism.<ns>.events.ge.<encoded from NUL label NUL to>.
func GraphEdgeEvent(ns, from, label, to string) string {
	return Root + "." + ns + ".events." + AbstractionGraphEdge + "." + EncodeID(GraphEdgeID(from, label, to))
}

// AllGraphEvents are the filter subjects of every vertex and edge event
// of ns.
func AllGraphEvents(ns string) []string {
	return []string{Root + "." + ns + ".events." + AbstractionGraphVertex + ".*", Root + "." + ns + ".events." + AbstractionGraphEdge + ".*"}
}

// GraphEventID is the subject id of ev: a vertex's id, or GraphEdgeID of
// an edge; nil when neither is set.
func GraphEventID(ev *prismv1.GraphEvent) []byte {
	switch {
	case ev.GetVertex() != nil:
		return []byte(ev.GetVertex().GetId())
	case ev.GetEdge() != nil:
		e := ev.GetEdge()
		return GraphEdgeID(e.GetFrom(), e.GetLabel(), e.GetTo())
	}
	return nil
}

// NewGraphEvent builds the CloudEvent message of ev: on GraphVertexEvent
// or GraphEdgeEvent, of the matching TypeGraph* type, ce-subject the
// encoded subject id, the marshalled event as data. The gateway validates
// ev before; an event with neither a vertex nor an edge is an error.
func NewGraphEvent(meta EventMeta, ev *prismv1.GraphEvent) (*nats.Msg, error) {
	var subject, typ string
	switch {
	case ev.GetVertex() != nil:
		subject, typ = GraphVertexEvent(meta.Namespace, ev.GetVertex().GetId()), TypeGraphVertexUpsert
		if ev.GetDelete() {
			typ = TypeGraphVertexDelete
		}
	case ev.GetEdge() != nil:
		e := ev.GetEdge()
		subject, typ = GraphEdgeEvent(meta.Namespace, e.GetFrom(), e.GetLabel(), e.GetTo()), TypeGraphEdgeUpsert
		if ev.GetDelete() {
			typ = TypeGraphEdgeDelete
		}
	default:
		return nil, fmt.Errorf("graph event without a vertex or an edge")
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	msg := newEvent(meta, subject, typ, EncodeID(GraphEventID(ev)))
	msg.Data = data
	return msg, nil
}

// DecodeGraphEvent decodes a Graph event from its subject, headers and
// data. It returns (nil, nil) for an idempotency marker and an error
// wrapping ErrBadEvent for anything malformed: a subject of another
// abstraction, a type that does not match the subject token and the
// payload, a payload that does not parse, names that break
// ValidateGraphName, an id that differs from the subject's, a delete
// carrying a label or properties.
func DecodeGraphEvent(subject string, header nats.Header, data []byte) (*prismv1.GraphEvent, error) {
	es, err := ParseEvent(subject)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	abstraction := AbstractionGraphVertex
	if es.Abstraction == AbstractionGraphEdge {
		abstraction = AbstractionGraphEdge
	}
	marker, err := checkEnvelope(es, subject, header, abstraction)
	if err != nil || marker {
		return nil, err
	}
	return decodeGraph(es, header, data)
}

func decodeGraph(es Event, header nats.Header, data []byte) (*prismv1.GraphEvent, error) {
	var ev prismv1.GraphEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEvent, err)
	}
	if err := checkGraphEvent(&ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if id := GraphEventID(&ev); !bytes.Equal(id, es.ID) {
		return nil, fmt.Errorf("%w: payload id %q differs from subject id %q", ErrBadEvent, id, es.ID)
	}
	want, token := TypeGraphEdgeUpsert, AbstractionGraphEdge
	switch {
	case ev.GetVertex() != nil && ev.GetDelete():
		want, token = TypeGraphVertexDelete, AbstractionGraphVertex
	case ev.GetVertex() != nil:
		want, token = TypeGraphVertexUpsert, AbstractionGraphVertex
	case ev.GetDelete():
		want = TypeGraphEdgeDelete
	}
	if typ := header.Get(HeaderType); typ != want || es.Abstraction != token {
		return nil, fmt.Errorf("%w: type %q on a %q subject does not match the payload", ErrBadEvent, typ, es.Abstraction)
	}
	return &ev, nil
}

// CheckGraphEvent reports why ev is not a well-formed graph event (what
// DecodeGraphEvent checks of a payload), nil when it is.
func CheckGraphEvent(ev *prismv1.GraphEvent) error { return checkGraphEvent(ev) }

func checkGraphEvent(ev *prismv1.GraphEvent) error {
	switch {
	case ev == nil:
		return fmt.Errorf("nil event")
	case ev.GetVertex() != nil:
		v := ev.GetVertex()
		if err := ValidateGraphName("vertex id", v.GetId()); err != nil {
			return err
		}
		if ev.GetDelete() {
			if v.GetLabel() != "" || len(v.GetProperties()) > 0 {
				return fmt.Errorf("a vertex delete with a label or properties")
			}
			return nil
		}
		return ValidateGraphName("vertex label", v.GetLabel())
	case ev.GetEdge() != nil:
		e := ev.GetEdge()
		for _, n := range [][2]string{{"edge from", e.GetFrom()}, {"edge label", e.GetLabel()}, {"edge to", e.GetTo()}} {
			if err := ValidateGraphName(n[0], n[1]); err != nil {
				return err
			}
		}
		if ev.GetDelete() && len(e.GetProperties()) > 0 {
			return fmt.Errorf("an edge delete with properties")
		}
		return nil
	}
	return fmt.Errorf("neither a vertex nor an edge")
}
