package kit

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The Graph projection of the SQL stores (docs/graph.md, ADR 019) is two
// tables: g_vertices (id, label, props, rev) and g_edges (src, label, dst,
// props, rev) whose primary key (src, label, dst) is the forward
// adjacency index and g_edges_in (dst, label, src) the reverse one. Both
// stores share the statements and the algorithms here; a GraphSQL says
// how a store spells its parameters and tables and runs its queries.

// GraphQuery runs a read query; done releases its rows.
type GraphQuery func(ctx context.Context, q string, args ...any) (rows Rows, done func(), err error)

// GraphExec runs (or queues, for a batch) one statement of an apply.
type GraphExec func(q string, args ...any) error

// GraphSQL is one SQL store's Graph projection.
type GraphSQL struct {
	// Prefix goes before each table name ("" or `"schema".`).
	Prefix string
	// Dollar is true for $1 parameters (PostgreSQL), false for ?.
	Dollar bool
	// Text casts a parameter to the id column's type and collation.
	Text func(param string) string
	// Query runs the reads.
	Query GraphQuery
}

// params builds the parameter list of one statement.
type params struct {
	dollar bool
	args   []any
}

func (p *params) add(v any) string {
	p.args = append(p.args, v)
	if p.dollar {
		return fmt.Sprintf("$%d", len(p.args))
	}
	return "?"
}

// in is "col IN (…)" of vs: one array parameter on PostgreSQL (one
// statement shape whatever the count, which its plan cache keeps), a
// parameter each on SQLite.
func (g GraphSQL) in(p *params, col string, vs []string) string {
	if g.Dollar {
		return col + ` = ANY(` + p.add(vs) + `::text[])`
	}
	return col + ` IN (` + p.list(vs) + `)`
}

func (p *params) list(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = p.add(v)
	}
	return strings.Join(out, ", ")
}

// CheckGraphBatch is CheckKeyValueBatch for Graph: every change must be
// non-nil with an event subjects.CheckGraphEvent accepts.
func CheckGraphBatch(changes []*prismv1.GraphChange, through uint64) *Fault {
	return checkBatch(changes, through, func(c *prismv1.GraphChange) string {
		if err := subjects.CheckGraphEvent(c.GetEvent()); err != nil {
			return err.Error()
		}
		return ""
	})
}

// MarshalProperties is how the stores keep properties: a GraphProperties,
// deterministic; empty for none.
func MarshalProperties(props map[string]string) ([]byte, error) {
	if len(props) == 0 {
		return []byte{}, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&prismv1.GraphProperties{Properties: props})
	if err != nil {
		return nil, fmt.Errorf("marshal properties: %w", err)
	}
	return b, nil
}

func unmarshalProperties(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var p prismv1.GraphProperties
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("stored properties: %w", err)
	}
	return p.GetProperties(), nil
}

// Apply runs the statements of the changes above checkpoint through exec,
// with the effect of applying them one by one in order: an upsert
// replaces label and properties, a vertex delete deletes the vertex's
// edges (both ways) and then the vertex. Upserts between two deletes are
// written as multi-row upserts, the last of each vertex or edge winning:
// no upsert depends on another, only deletes do on what came before.
func (g GraphSQL) Apply(exec GraphExec, changes []*prismv1.GraphChange, checkpoint uint64) error {
	var ups upserts
	for _, c := range changes {
		if c.GetSeq() <= checkpoint {
			continue
		}
		ev := c.GetEvent()
		if !ev.GetDelete() {
			if err := ups.add(c); err != nil {
				return fmt.Errorf("change seq %d: %w", c.GetSeq(), err)
			}
			continue
		}
		if err := g.flush(exec, &ups); err != nil {
			return err
		}
		if err := g.delete(exec, ev); err != nil {
			return fmt.Errorf("change seq %d: %w", c.GetSeq(), err)
		}
	}
	return g.flush(exec, &ups)
}

// upserts are the vertex and edge upserts since the last delete: rows of
// the statements' columns, and where each vertex or edge's row is.
type upserts struct {
	vertices, edges [][]any
	at              map[string]int // "v"+id or "e"+edge id -> row
}

func (u *upserts) add(c *prismv1.GraphChange) error {
	if u.at == nil {
		u.at = map[string]int{}
	}
	ev, rev := c.GetEvent(), int64(c.GetSeq())
	var key string
	var row []any
	var rows *[][]any
	if v := ev.GetVertex(); v != nil {
		props, err := MarshalProperties(v.GetProperties())
		if err != nil {
			return err
		}
		key, row, rows = "v"+v.GetId(), []any{v.GetId(), v.GetLabel(), props, rev}, &u.vertices
	} else {
		e := ev.GetEdge()
		props, err := MarshalProperties(e.GetProperties())
		if err != nil {
			return err
		}
		key, row, rows = "e"+string(subjects.GraphEdgeID(e.GetFrom(), e.GetLabel(), e.GetTo())), []any{e.GetFrom(), e.GetLabel(), e.GetTo(), props, rev}, &u.edges
	}
	if i, ok := u.at[key]; ok {
		(*rows)[i] = row
		return nil
	}
	u.at[key] = len(*rows)
	*rows = append(*rows, row)
	return nil
}

// graphChunk is the most rows one upsert statement writes.
const graphChunk = 256

// flush writes the buffered upserts and empties the buffer.
func (g GraphSQL) flush(exec GraphExec, u *upserts) error {
	for _, t := range []struct {
		rows                  [][]any
		table, cols, conflict string
	}{
		{u.vertices, "g_vertices", "id, label, props, rev", "(id) DO UPDATE SET label = excluded.label, props = excluded.props, rev = excluded.rev"},
		{u.edges, "g_edges", "src, label, dst, props, rev", "(src, label, dst) DO UPDATE SET props = excluded.props, rev = excluded.rev"},
	} {
		for rows := t.rows; len(rows) > 0; {
			n := min(len(rows), graphChunk)
			p := &params{dollar: g.Dollar}
			values := make([]string, n)
			for i, row := range rows[:n] {
				cells := make([]string, len(row))
				for j, v := range row {
					cells[j] = p.add(v)
				}
				values[i] = "(" + strings.Join(cells, ", ") + ")"
			}
			q := `INSERT INTO ` + g.Prefix + t.table + ` (` + t.cols + `) VALUES ` + strings.Join(values, ", ") + ` ON CONFLICT ` + t.conflict
			if err := exec(q, p.args...); err != nil {
				return fmt.Errorf("upsert %s: %w", t.table, err)
			}
			rows = rows[n:]
		}
	}
	u.vertices, u.edges = u.vertices[:0], u.edges[:0]
	clear(u.at)
	return nil
}

// delete runs the statements of one delete.
func (g GraphSQL) delete(exec GraphExec, ev *prismv1.GraphEvent) error {
	p := &params{dollar: g.Dollar}
	if v := ev.GetVertex(); v != nil {
		id := p.add(v.GetId())
		for _, q := range []string{
			`DELETE FROM ` + g.Prefix + `g_edges WHERE src = ` + id,
			`DELETE FROM ` + g.Prefix + `g_edges WHERE dst = ` + id,
			`DELETE FROM ` + g.Prefix + `g_vertices WHERE id = ` + id,
		} {
			if err := exec(q, p.args...); err != nil {
				return err
			}
		}
		return nil
	}
	e := ev.GetEdge()
	return exec(`DELETE FROM `+g.Prefix+`g_edges WHERE (src, label, dst) = (`+p.add(e.GetFrom())+`, `+p.add(e.GetLabel())+`, `+p.add(e.GetTo())+`)`, p.args...)
}

// one runs q and scans its first row with scan; found is false for none.
func (g GraphSQL) one(ctx context.Context, q string, args []any, scan func(Rows) error) (found bool, err error) {
	rows, done, err := g.Query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer done()
	if !rows.Next() {
		return false, rows.Err()
	}
	return true, scan(rows)
}

// GetVertex returns vertex id, nil when there is none.
func (g GraphSQL) GetVertex(ctx context.Context, id string) (*prismv1.Vertex, error) {
	v := &prismv1.Vertex{Id: id}
	p := &params{dollar: g.Dollar}
	found, err := g.one(ctx, `SELECT label, props, rev FROM `+g.Prefix+`g_vertices WHERE id = `+p.add(id), p.args, func(r Rows) error {
		var props []byte
		var rev int64
		if err := r.Scan(&v.Label, &props, &rev); err != nil {
			return err
		}
		v.Revision = uint64(rev)
		var err error
		v.Properties, err = unmarshalProperties(props)
		return err
	})
	if !found || err != nil {
		return nil, err
	}
	return v, nil
}

// GetEdge returns edge (from, label, to), nil when there is none.
func (g GraphSQL) GetEdge(ctx context.Context, from, label, to string) (*prismv1.Edge, error) {
	e := &prismv1.Edge{From: from, Label: label, To: to}
	p := &params{dollar: g.Dollar}
	q := `SELECT props, rev FROM ` + g.Prefix + `g_edges WHERE src = ` + p.add(from) + ` AND label = ` + p.add(label) + ` AND dst = ` + p.add(to)
	found, err := g.one(ctx, q, p.args, func(r Rows) error {
		var props []byte
		var rev int64
		if err := r.Scan(&props, &rev); err != nil {
			return err
		}
		e.Revision = uint64(rev)
		var err error
		e.Properties, err = unmarshalProperties(props)
		return err
	})
	if !found || err != nil {
		return nil, err
	}
	return e, nil
}
