package neptune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Store is the Graph projection of one namespace (one target of it) in a
// Neptune cluster. It
// implements projectors.GraphTarget and gateway.GraphReader; its methods
// are safe for concurrent use.
type Store struct {
	ns   string
	c    *client
	gate kit.Gate
}

// New returns the store of graph (a namespace, or GraphName of one of its
// targets) in the Neptune cluster at endpoint ("host:port" or
// "https://host:port"; Neptune's port is 8182). Requests
// are signed with the credentials of WithCredentials, or else of the AWS
// SDK's default chain, for the region of WithRegion or of the default
// config. New sends nothing: the first Checkpoint (the projector's start)
// shows whether Neptune is reachable.
//
// Errors: an invalid endpoint, an empty graph name, an invalid option;
// no region; the default config failing to load.
func New(ctx context.Context, endpoint, graph string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return nil, fmt.Errorf("neptune: %w", err)
	}
	u, err := endpointURL(endpoint)
	if err != nil {
		return nil, fmt.Errorf("neptune: %w", err)
	}
	if graph == "" {
		return nil, errors.New("neptune: empty graph name")
	}
	if o.creds == nil || o.region == "" || o.http == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("neptune: load the AWS config: %w", err)
		}
		if o.creds == nil {
			o.creds = cfg.Credentials
		}
		if o.region == "" {
			o.region = cfg.Region
		}
		if o.http == nil {
			o.http = cfg.HTTPClient
		}
	}
	if o.creds == nil {
		return nil, errors.New("neptune: no AWS credentials")
	}
	if o.region == "" {
		return nil, errors.New("neptune: no AWS region: set AWS_REGION or the profile's region")
	}
	if o.http == nil {
		o.http = http.DefaultClient
	}
	if _, ok := o.creds.(*aws.CredentialsCache); !ok {
		o.creds = aws.NewCredentialsCache(o.creds)
	}
	return &Store{ns: graph, c: &client{url: u, http: o.http, creds: o.creds, region: o.region, signer: v4.NewSigner(), o: o}}, nil
}

// Close makes every later call fail with ErrClosed, once the calls in
// flight have ended. It is idempotent.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		if c, ok := s.c.http.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
		return nil
	})
}

type seqRow struct {
	Seq *int64 `json:"seq"`
}

// Checkpoint returns the stream sequence the namespace's graph reaches, 0
// before the first batch. Errors: ErrClosed; an error matching
// ErrUnavailable.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	return kit.Do(&s.gate, ErrClosed, "checkpoint", nil, func() (uint64, error) { return s.checkpoint(ctx) })
}

func (s *Store) checkpoint(ctx context.Context) (uint64, error) {
	var rows []seqRow
	if err := s.c.query(ctx, false, qCheckpoint, map[string]any{"ns": s.ns}, &rows); err != nil {
		return 0, err
	}
	if len(rows) == 0 || rows[0].Seq == nil {
		return 0, nil
	}
	if *rows[0].Seq < 0 {
		return 0, fmt.Errorf("%w: stored checkpoint %d", ErrUnavailable, *rows[0].Seq)
	}
	return uint64(*rows[0].Seq), nil
}

// maxGuardRetries bounds how often a batch is recomputed because the
// checkpoint moved under it (another writer, or an earlier try of this
// one whose answer was lost).
const maxGuardRetries = 5

// ApplyGraph applies the changes above the stored checkpoint and sets the
// checkpoint to through in one openCypher request, which Neptune runs as
// one transaction: all of it or none. The batch is first collapsed to the
// final state of each vertex and edge (see plan), so the request is
// idempotent; it is guarded by the checkpoint read before it, so a batch
// whose checkpoint moved meanwhile writes nothing and is worked out again
// from the new checkpoint (an answer lost after a commit is found so).
//
// Errors: an *InvalidChangeError or ErrInvalidBatch (wrapped) before
// anything is sent; ErrClosed; a *QueryError that is Permanent when
// Neptune refused the batch's data; otherwise an error matching
// ErrUnavailable.
func (s *Store) ApplyGraph(ctx context.Context, changes []*prismv1.GraphChange, through uint64) error {
	return kit.Apply(&s.gate, ErrClosed, "graph", through, kitErrors.Batch(kit.CheckGraphBatch(changes, through)), func() error {
		cp, err := s.checkpoint(ctx)
		if err != nil {
			return err
		}
		for range maxGuardRetries {
			if through <= cp {
				return nil
			}
			p, err := newPlan(changes, cp)
			if err != nil {
				return err
			}
			var rows []seqRow
			if err := s.c.query(ctx, true, batchQuery(p), p.params(s.ns, cp, through), &rows); err != nil {
				return err
			}
			if len(rows) == 1 && rows[0].Seq != nil && *rows[0].Seq == int64(through) {
				return nil
			}
			if cp, err = s.checkpoint(ctx); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: the checkpoint kept moving under the batch: is another projector writing namespace %s?", ErrUnavailable, s.ns)
	})
}

// plan is a batch collapsed to its final effect, in the order the
// request applies it: delete every vertex deleted anywhere in the batch
// (with all its edges: those the batch wrote before the delete go with
// it, those it wrote after are written again below), write the vertices
// whose last change is an upsert, delete the edges whose last change is a
// delete, write the edges whose last upsert no delete of an end follows.
type plan struct {
	vdel []string
	vput []map[string]any
	edel []map[string]any
	eput []map[string]any
}

type edgeKey struct{ from, label, to string }

func newPlan(changes []*prismv1.GraphChange, checkpoint uint64) (*plan, error) {
	p := &plan{}
	vertices := map[string]*prismv1.GraphChange{} // last change of each vertex
	edges := map[edgeKey]*prismv1.GraphChange{}   // last change of each edge
	byEnd := map[string][]edgeKey{}               // edges of the batch by end
	deleted := map[string]bool{}
	seen := map[edgeKey]bool{}
	var vorder []string
	var eorder []edgeKey
	for _, c := range changes {
		if c.GetSeq() <= checkpoint {
			continue
		}
		ev := c.GetEvent()
		if v := ev.GetVertex(); v != nil {
			if _, ok := vertices[v.GetId()]; !ok {
				vorder = append(vorder, v.GetId())
			}
			vertices[v.GetId()] = c
			if ev.GetDelete() {
				if !deleted[v.GetId()] {
					deleted[v.GetId()] = true
					p.vdel = append(p.vdel, v.GetId())
				}
				for _, k := range byEnd[v.GetId()] {
					delete(edges, k) // gone with the vertex, nothing to write
				}
				byEnd[v.GetId()] = nil
			}
			continue
		}
		e := ev.GetEdge()
		k := edgeKey{e.GetFrom(), e.GetLabel(), e.GetTo()}
		if !seen[k] {
			seen[k] = true
			eorder = append(eorder, k)
		}
		if _, ok := edges[k]; !ok {
			byEnd[k.from] = append(byEnd[k.from], k)
			if k.to != k.from {
				byEnd[k.to] = append(byEnd[k.to], k)
			}
		}
		edges[k] = c
	}
	for _, id := range vorder {
		c := vertices[id]
		if c.GetEvent().GetDelete() {
			continue
		}
		v := c.GetEvent().GetVertex()
		props, err := encodeProps(v.GetProperties())
		if err != nil {
			return nil, err
		}
		p.vput = append(p.vput, map[string]any{"id": id, "label": v.GetLabel(), "props": props, "rev": int64(c.GetSeq())})
	}
	for _, k := range eorder {
		c, ok := edges[k]
		switch {
		case !ok: // removed by a vertex delete
		case c.GetEvent().GetDelete():
			if !deleted[k.from] && !deleted[k.to] {
				p.edel = append(p.edel, map[string]any{"from": k.from, "label": k.label, "to": k.to})
			}
		default:
			props, err := encodeProps(c.GetEvent().GetEdge().GetProperties())
			if err != nil {
				return nil, err
			}
			p.eput = append(p.eput, map[string]any{"from": k.from, "label": k.label, "to": k.to, "props": props, "rev": int64(c.GetSeq())})
		}
	}
	return p, nil
}

// params are the request parameters of the plan: only those its query
// names.
func (p *plan) params(ns string, expected, through uint64) map[string]any {
	m := map[string]any{"ns": ns, "expected": int64(expected), "through": int64(through)}
	if len(p.vdel) > 0 {
		m["vdel"] = p.vdel
	}
	if len(p.vput) > 0 {
		m["vput"] = p.vput
	}
	if len(p.edel) > 0 {
		m["edel"] = p.edel
	}
	if len(p.eput) > 0 {
		m["eput"] = p.eput
	}
	return m
}

// encodeProps is how properties are kept: one JSON object (keys sorted),
// "{}" for none.
func encodeProps(props map[string]string) (string, error) {
	if len(props) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(props)
	if err != nil {
		return "", fmt.Errorf("encode properties: %w", err)
	}
	return string(b), nil
}

func decodeProps(s *string) (map[string]string, error) {
	if s == nil || *s == "" || *s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(*s), &m); err != nil {
		return nil, fmt.Errorf("%w: stored properties: %w", ErrUnavailable, err)
	}
	return m, nil
}
