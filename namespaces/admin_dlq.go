package namespaces

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/status"
)

func isDLQOp(op string) bool { return slices.Contains(dlqOps, op) }

// maxRedriveWait bounds how long a redrive request waits for the targets,
// within adminTimeout.
const maxRedriveWait = adminTimeout - 2*time.Second

func (a *Admin) handleDLQ(ctx context.Context, op string, body []byte) (any, error) {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return nil, status.FromJetStream(err, "", "opening JetStream")
	}
	switch op {
	case AdminDLQList:
		var req DLQListRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		return ListDeadLetters(ctx, js, req)
	case AdminDLQShow:
		var req DLQShowRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		return ShowDeadLetter(ctx, js, req.Name, req.Seq)
	case AdminDLQRedrive:
		var req DLQRedriveRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		req.WaitMS = min(req.WaitMS, maxRedriveWait.Milliseconds())
		r, err := RedriveDeadLetters(ctx, js, req)
		if len(r.Redriven) > 0 {
			a.cfg.Logger.Info("dead letters redriven", "namespace", req.Name, "by", by(ctx, req.By), "count", len(r.Redriven), "remaining", r.Remaining)
		}
		return r, err
	}
	var req DLQDropRequest
	if err := decodeAdmin(body, &req); err != nil {
		return nil, err
	}
	r, err := DropDeadLetters(ctx, js, req)
	if len(r.Dropped) > 0 {
		a.cfg.Logger.Info("dead letters dropped", "namespace", req.Name, "by", by(ctx, req.By), "seqs", r.Dropped, "remaining", r.Remaining)
	}
	return r, err
}

// DLQList returns one page of namespace req.Name's dead letters.
func (c *AdminClient) DLQList(ctx context.Context, req DLQListRequest) (DLQListReply, error) {
	var out DLQListReply
	return out, c.call(ctx, AdminDLQList, req, &out)
}

// DLQListAll returns every dead letter of namespace name (of target, when
// set), reading page after page.
func (c *AdminClient) DLQListAll(ctx context.Context, name, target string) (DLQListReply, error) {
	out := DLQListReply{Name: name, DeadLetters: []DeadLetter{}}
	for after := uint64(0); ; {
		page, err := c.DLQList(ctx, DLQListRequest{Name: name, After: after, Target: target})
		if err != nil {
			return out, err
		}
		out.Depth = page.Depth
		out.DeadLetters = append(out.DeadLetters, page.DeadLetters...)
		if after = page.Next; after == 0 {
			return out, nil
		}
	}
}

// DLQShow returns dead letter seq of namespace name with its event.
func (c *AdminClient) DLQShow(ctx context.Context, name string, seq uint64) (DeadLetterEvent, error) {
	var out DeadLetterEvent
	return out, c.call(ctx, AdminDLQShow, DLQShowRequest{Name: name, Seq: seq}, &out)
}

// DLQRedrive redrives the dead letters sel selects: with sel.All every one
// there is when it starts (of sel.Target, when set), in requests of up to
// MaxDeadLettersPerRequest, printing a line of progress to progress after
// each. The reply lists every dead letter redriven.
func (c *AdminClient) DLQRedrive(ctx context.Context, sel DLQSelection, wait time.Duration, by string, progress io.Writer) (DLQRedriveReply, error) {
	out := DLQRedriveReply{Name: sel.Name, Redriven: []RedriveResult{}}
	err := c.inChunks(ctx, sel, func(seqs []uint64) error {
		var r DLQRedriveReply
		err := c.call(ctx, AdminDLQRedrive, DLQRedriveRequest{DLQSelection: DLQSelection{Name: sel.Name, Seqs: seqs}, WaitMS: wait.Milliseconds(), By: by}, &r)
		out.Redriven, out.Remaining = append(out.Redriven, r.Redriven...), r.Remaining
		fmt.Fprintf(progress, "redrove %d dead letters of %s; %d left\n", len(out.Redriven), sel.Name, r.Remaining)
		return err
	})
	return out, err
}

// DLQDrop deletes the dead letters sel selects (as DLQRedrive does).
func (c *AdminClient) DLQDrop(ctx context.Context, sel DLQSelection, by string, progress io.Writer) (DLQDropReply, error) {
	out := DLQDropReply{Name: sel.Name, Dropped: []uint64{}}
	err := c.inChunks(ctx, sel, func(seqs []uint64) error {
		var r DLQDropReply
		err := c.call(ctx, AdminDLQDrop, DLQDropRequest{DLQSelection: DLQSelection{Name: sel.Name, Seqs: seqs}, Confirm: true, By: by}, &r)
		out.Dropped, out.Remaining = append(out.Dropped, r.Dropped...), r.Remaining
		fmt.Fprintf(progress, "dropped %d dead letters of %s; %d left\n", len(out.Dropped), sel.Name, r.Remaining)
		return err
	})
	return out, err
}

// inChunks calls do with the sequences sel selects, at most
// MaxDeadLettersPerRequest at a time. With sel.All they are listed first,
// so that dead letters that appear meanwhile (an event refused again) are
// not taken.
func (c *AdminClient) inChunks(ctx context.Context, sel DLQSelection, do func([]uint64) error) error {
	seqs := sel.Seqs
	if sel.All {
		l, err := c.DLQListAll(ctx, sel.Name, sel.Target)
		if err != nil {
			return err
		}
		for _, d := range l.DeadLetters {
			seqs = append(seqs, d.Seq)
		}
		if len(seqs) == 0 {
			return status.Newf(status.ErrNotFound.Code, "namespace %s has no dead letters to select", sel.Name)
		}
	} else if len(seqs) == 0 {
		return status.Invalidf("name the dead letters (their seqs, from prism dlq list) or pass --all")
	}
	for chunk := range slices.Chunk(seqs, MaxDeadLettersPerRequest) {
		if err := do(chunk); err != nil {
			return err
		}
	}
	return nil
}

// ParseDLQSeqs parses dead-letter sequences given on a command line.
func ParseDLQSeqs(args []string) ([]uint64, error) {
	out := make([]uint64, 0, len(args))
	for _, a := range args {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil || seq == 0 {
			return nil, status.Invalidf("dead letter %q: want its seq, a positive number (prism dlq list shows them)", a)
		}
		out = append(out, seq)
	}
	return out, nil
}
