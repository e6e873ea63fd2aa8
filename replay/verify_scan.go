package replay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// next returns the smallest id above id: the from of the page after it.
func next(id []byte) []byte {
	out := make([]byte, len(id)+1)
	copy(out, id)
	return out
}

// page is one ExportRecords call of the scan, digested.
type page struct {
	entries []entry
	read    read
	// last is true when the call returned fewer records than asked: there
	// is nothing after it.
	last bool
	err  error
}

// pages reads src in id order, a page at a time, and sends the pages
// digested on the returned channel until the last one, an error or the end
// of ctx. It reads one page ahead of the consumer. The checkpoint read
// after a page is the lower bound of the next one.
func pages(ctx context.Context, wg *sync.WaitGroup, src Source, size int, now time.Time) <-chan *page {
	out := make(chan *page, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		send := func(p *page) bool {
			select {
			case out <- p:
				return true
			case <-ctx.Done():
				return false
			}
		}
		lo, err := src.Checkpoint(ctx)
		if err != nil {
			send(&page{err: err})
			return
		}
		d := newDigester()
		from := []byte{}
		for {
			recs, err := src.ExportRecords(ctx, from, size, now)
			if err != nil {
				send(&page{err: err})
				return
			}
			hi, err := src.Checkpoint(ctx)
			if err != nil {
				send(&page{err: err})
				return
			}
			p := &page{entries: make([]entry, len(recs)), read: read{lo: lo, hi: hi, at: time.Now()}, last: len(recs) < size}
			for i, r := range recs {
				p.entries[i] = d.digest(r)
			}
			if !send(p) || p.last {
				return
			}
			from, lo = next(recs[len(recs)-1].GetId()), hi
		}
	}()
	return out
}

// cursor walks the records of one target's pages.
type cursor struct {
	in  <-chan *page
	cur *page
	i   int
	n   int64 // records passed
}

// head returns the cursor's record, or nil when there is none left, and
// the read that saw it (or, past the end, the last read, which saw that
// nothing follows). Any id below the head's that the cursor did not return
// is absent from that same read: its from was at or below that id.
func (c *cursor) head(ctx context.Context) (*entry, *read, error) {
	for c.cur == nil || c.i == len(c.cur.entries) && !c.cur.last {
		select {
		case p, ok := <-c.in:
			if !ok { // the producer stopped: ctx ended
				return nil, nil, ctx.Err()
			}
			if p.err != nil {
				return nil, nil, p.err
			}
			c.cur, c.i = p, 0
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if c.i == len(c.cur.entries) {
		return nil, &c.cur.read, nil
	}
	return &c.cur.entries[c.i], &c.cur.read, nil
}

func (c *cursor) advance() { c.i++; c.n++ }

// pair is what the scan saw of one id on both targets.
type pair struct{ o, n obs }

func (p pair) id() []byte {
	if p.o.e != nil {
		return p.o.e.id
	}
	return p.n.e.id
}

// span is the records of one checksum range.
type span struct {
	pairs  []pair
	ho, hn hash.Hash
	buf    []byte
}

func newSpan(size int) *span {
	return &span{pairs: make([]pair, 0, size), ho: sha256.New(), hn: sha256.New()}
}

func (s *span) add(p pair) {
	s.pairs = append(s.pairs, p)
	s.write(s.ho, p.o.e)
	s.write(s.hn, p.n.e)
}

// write adds e to h in an encoding where no two sequences of entries
// share a form.
func (s *span) write(h hash.Hash, e *entry) {
	if e == nil {
		return
	}
	b := binary.AppendUvarint(s.buf[:0], uint64(len(e.id)))
	b = append(b, e.id...)
	b = binary.BigEndian.AppendUint64(b, e.rev)
	b = append(b, e.sum[:]...)
	h.Write(b)
	s.buf = b[:0]
}

func (s *span) reset() {
	s.pairs = s.pairs[:0]
	s.ho.Reset()
	s.hn.Reset()
}

// scan merges both targets in id order and compares them range by range.
func (v *verifier) scan(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	now := time.Now()
	co := &cursor{in: pages(ctx, &wg, v.old, v.opts.pageSize, now)}
	cn := &cursor{in: pages(ctx, &wg, v.new, v.opts.pageSize, now)}
	defer func() { v.oldRecords, v.newRecords = co.n, cn.n }()
	sp := newSpan(v.opts.rangeSize)
	for {
		eo, ro, err := co.head(ctx)
		if err != nil {
			return err
		}
		en, rn, err := cn.head(ctx)
		if err != nil {
			return err
		}
		var p pair
		switch {
		case eo == nil && en == nil:
			v.closeRange(sp)
			return nil
		case en == nil || eo != nil && bytes.Compare(eo.id, en.id) < 0:
			p = pair{o: obs{eo, ro}, n: obs{nil, rn}}
			co.advance()
		case eo == nil || bytes.Compare(en.id, eo.id) < 0:
			p = pair{o: obs{nil, ro}, n: obs{en, rn}}
			cn.advance()
		default:
			p = pair{o: obs{eo, ro}, n: obs{en, rn}}
			co.advance()
			cn.advance()
		}
		sp.add(p)
		if len(sp.pairs) == v.opts.rangeSize {
			v.closeRange(sp)
			v.progress(Progress{Phase: "scan", Pending: len(v.pending)})
		}
	}
}

// closeRange counts a range that matches as a whole, or else compares its
// records one by one.
func (v *verifier) closeRange(s *span) {
	if len(s.pairs) == 0 {
		return
	}
	v.ranges++
	first := v.compared
	v.compared += int64(len(s.pairs))
	var so, sn [sha256.Size]byte
	if bytes.Equal(s.ho.Sum(so[:0]), s.hn.Sum(sn[:0])) {
		v.matched += int64(len(s.pairs))
	} else {
		v.rangesMismatched++
		for i, p := range s.pairs {
			verd := classify(p.o, p.n, v.opts.clockSkew)
			if verd == undecided {
				v.noteExpiry(p.o, p.n)
			}
			v.record(pendingID{p.id(), first + int64(i)}, verd, false)
		}
	}
	s.reset()
}
