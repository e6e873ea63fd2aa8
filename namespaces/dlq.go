package namespaces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// The dead-letter operations of the admin API (docs/dead-letters.md). Each
// needs admin of the namespace.
const (
	// AdminDLQList: DLQListRequest → DLQListReply.
	AdminDLQList = "dlq.list"
	// AdminDLQShow: DLQShowRequest → DeadLetterEvent.
	AdminDLQShow = "dlq.show"
	// AdminDLQRedrive: DLQRedriveRequest → DLQRedriveReply.
	AdminDLQRedrive = "dlq.redrive"
	// AdminDLQDrop: DLQDropRequest → DLQDropReply.
	AdminDLQDrop = "dlq.drop"
)

// dlqOps are the dead-letter operations.
var dlqOps = []string{AdminDLQList, AdminDLQShow, AdminDLQRedrive, AdminDLQDrop}

// MaxDeadLettersPerRequest bounds the dead letters one list, redrive or
// drop request handles; a reply says how many are left (prism dlq repeats
// the request until none is).
const MaxDeadLettersPerRequest = 100

// DeadLetter is one dead letter of a namespace: an event one of its
// targets could not apply, kept in subjects.DeadLetterStream.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream: what
	// show, redrive and drop name it by.
	Seq uint64 `json:"seq"`
	// StreamSeq is the sequence of the original event in the namespace's
	// stream, Subject its subject (it holds the encoded record id).
	StreamSeq uint64 `json:"stream_seq"`
	Subject   string `json:"subject"`
	// Target is the projection target that refused it.
	Target string `json:"target"`
	// Reason is why: the decode error or the target's refusal.
	Reason string `json:"reason"`
	// Time is when it was dead-lettered.
	Time time.Time `json:"time"`
	// Type is the event's CloudEvent type (ce-type), when it has one.
	Type string `json:"type,omitempty"`
}

// DeadLetterEvent is a dead letter with its original event as stored:
// the CloudEvent headers (ce-*, prism extensions) and the payload. PII
// fields stay the ciphertext the gateway sealed them into.
type DeadLetterEvent struct {
	DeadLetter
	Headers map[string][]string `json:"headers"`
	// Data is the event's payload (base64 in JSON).
	Data []byte `json:"data"`
}

// DLQListRequest lists the dead letters of namespace Name with a sequence
// above After, of target Target ("": every target), at most Limit (0 or
// more than MaxDeadLettersPerRequest: MaxDeadLettersPerRequest).
type DLQListRequest struct {
	Name   string `json:"name"`
	After  uint64 `json:"after,omitempty"`
	Target string `json:"target,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// DLQListReply is a page of a namespace's dead letters, oldest first.
type DLQListReply struct {
	Name        string       `json:"name"`
	DeadLetters []DeadLetter `json:"dead_letters"`
	// Depth is how many dead letters the namespace has, of every target.
	Depth uint64 `json:"depth"`
	// Next is the After of the next page; 0 when this one is the last.
	Next uint64 `json:"next,omitempty"`
}

// DLQShowRequest names one dead letter of namespace Name.
type DLQShowRequest struct {
	Name string `json:"name"`
	Seq  uint64 `json:"seq"`
}

// DLQSelection selects dead letters of namespace Name: those of Seqs, or
// with All every one (of Target, when set), up to
// MaxDeadLettersPerRequest at a time.
type DLQSelection struct {
	Name   string   `json:"name"`
	Seqs   []uint64 `json:"seqs,omitempty"`
	All    bool     `json:"all,omitempty"`
	Target string   `json:"target,omitempty"`
}

// DLQDropRequest deletes the selected dead letters; Confirm must be true.
type DLQDropRequest struct {
	DLQSelection
	Confirm bool   `json:"confirm"`
	By      string `json:"by,omitempty"`
}

// DLQDropReply lists the dead letters deleted and how many are left.
type DLQDropReply struct {
	Name      string   `json:"name"`
	Dropped   []uint64 `json:"dropped"`
	Remaining uint64   `json:"remaining"`
}

// dlqStream returns the dead-letter stream.
func dlqStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, subjects.DeadLetterStream)
	if err != nil {
		return nil, status.FromJetStream(err, "", "reading the dead-letter stream "+subjects.DeadLetterStream)
	}
	return s, nil
}

// DeadLetterDepths returns the number of dead letters of each namespace
// that has any, from the dead-letter stream's per-subject counts.
func DeadLetterDepths(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	s, err := dlqStream(ctx, js)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subjects.DeadLetterSubjects()[0]))
	if err != nil {
		return nil, status.FromJetStream(err, "", "reading the dead-letter stream "+subjects.DeadLetterStream)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	prefix := subjects.DeadLetter("")
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, prefix)] = n
	}
	return out, nil
}

// depth is the number of dead letters of namespace ns.
func depth(ctx context.Context, s jetstream.Stream, ns string) (uint64, error) {
	subj := subjects.DeadLetter(ns)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, status.FromJetStream(err, ns, "counting dead letters")
	}
	return info.State.Subjects[subj], nil
}

// ListDeadLetters returns the page of namespace req.Name's dead letters
// that req asks for. Errors: INVALID_ARGUMENT for an invalid namespace
// name, UNAVAILABLE when JetStream does not answer.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, req DLQListRequest) (DLQListReply, error) {
	if err := subjects.ValidateNamespace(req.Name); err != nil {
		return DLQListReply{}, status.Invalidf("%v", err)
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxDeadLettersPerRequest {
		limit = MaxDeadLettersPerRequest
	}
	s, err := dlqStream(ctx, js)
	if err != nil {
		return DLQListReply{}, err
	}
	out := DLQListReply{Name: req.Name, DeadLetters: []DeadLetter{}}
	err = scan(ctx, s, req.Name, req.After, func(d DeadLetterEvent) bool {
		if req.Target != "" && d.Target != req.Target {
			return true
		}
		if len(out.DeadLetters) == limit {
			out.Next = out.DeadLetters[limit-1].Seq
			return false
		}
		out.DeadLetters = append(out.DeadLetters, d.DeadLetter)
		return true
	})
	if err != nil {
		return out, err
	}
	// Counted after the scan, so that it includes what the page lists.
	out.Depth, err = depth(ctx, s, req.Name)
	return out, err
}

// scan calls fn with each dead letter of ns above sequence after, in
// order, until fn returns false or none is left.
func scan(ctx context.Context, s jetstream.Stream, ns string, after uint64, fn func(DeadLetterEvent) bool) error {
	subj := subjects.DeadLetter(ns)
	for seq := after + 1; ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return status.FromJetStream(err, ns, "reading dead letters")
		}
		if !fn(deadLetterOf(m)) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// deadLetterOf reads a message of the dead-letter stream.
func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetterEvent {
	h := m.Header
	seq, _ := strconv.ParseUint(h.Get(subjects.HeaderDLQSeq), 10, 64)
	d := DeadLetterEvent{
		DeadLetter: DeadLetter{
			Seq: m.Sequence, StreamSeq: seq, Subject: h.Get(subjects.HeaderDLQSubject),
			Target: h.Get(subjects.HeaderDLQTarget), Reason: h.Get(subjects.HeaderDLQReason),
			Time: m.Time.UTC(), Type: h.Get(subjects.HeaderType),
		},
		Headers: map[string][]string{},
		Data:    m.Data,
	}
	for k, v := range h {
		if !strings.HasPrefix(k, "Prism-Dlq-") {
			d.Headers[k] = v
		}
	}
	return d
}

// ShowDeadLetter returns dead letter seq of namespace ns with its event.
// Errors: NOT_FOUND when the dead-letter stream holds no dead letter seq
// of ns; INVALID_ARGUMENT, UNAVAILABLE as ListDeadLetters.
func ShowDeadLetter(ctx context.Context, js jetstream.JetStream, ns string, seq uint64) (DeadLetterEvent, error) {
	if err := subjects.ValidateNamespace(ns); err != nil {
		return DeadLetterEvent{}, status.Invalidf("%v", err)
	}
	s, err := dlqStream(ctx, js)
	if err != nil {
		return DeadLetterEvent{}, err
	}
	return getDeadLetter(ctx, s, ns, seq)
}

func getDeadLetter(ctx context.Context, s jetstream.Stream, ns string, seq uint64) (DeadLetterEvent, error) {
	m, err := s.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && m.Subject != subjects.DeadLetter(ns):
		return DeadLetterEvent{}, status.Newf(status.ErrNotFound.Code, "namespace %s has no dead letter %d (prism dlq list %s shows those it has)", ns, seq, ns)
	case err != nil:
		return DeadLetterEvent{}, status.FromJetStream(err, ns, "reading a dead letter")
	}
	return deadLetterOf(m), nil
}

// selectDeadLetters returns the dead letters sel names, all checked
// before any is acted on: NOT_FOUND names the first that ns does not have.
func selectDeadLetters(ctx context.Context, s jetstream.Stream, sel DLQSelection) ([]DeadLetterEvent, error) {
	if err := subjects.ValidateNamespace(sel.Name); err != nil {
		return nil, status.Invalidf("%v", err)
	}
	switch {
	case sel.All && len(sel.Seqs) > 0:
		return nil, status.Invalidf("give either seqs or all, not both")
	case !sel.All && len(sel.Seqs) == 0:
		return nil, status.Invalidf("name the dead letters (seqs) or select all of them (all)")
	case len(sel.Seqs) > MaxDeadLettersPerRequest:
		return nil, status.Invalidf("%d dead letters named: at most %d per request", len(sel.Seqs), MaxDeadLettersPerRequest)
	}
	var out []DeadLetterEvent
	if sel.All {
		err := scan(ctx, s, sel.Name, 0, func(d DeadLetterEvent) bool {
			if sel.Target == "" || d.Target == sel.Target {
				out = append(out, d)
			}
			return len(out) < MaxDeadLettersPerRequest
		})
		return out, err
	}
	seqs := slices.Clone(sel.Seqs)
	slices.Sort(seqs)
	for _, seq := range slices.Compact(seqs) {
		d, err := getDeadLetter(ctx, s, sel.Name, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// DropDeadLetters deletes the dead letters req selects, all of which must
// exist (nothing is deleted otherwise), and says how many are left.
// Errors: FAILED_PRECONDITION without req.Confirm; NOT_FOUND,
// INVALID_ARGUMENT and UNAVAILABLE as ShowDeadLetter.
func DropDeadLetters(ctx context.Context, js jetstream.JetStream, req DLQDropRequest) (DLQDropReply, error) {
	if !req.Confirm {
		return DLQDropReply{}, status.Newf(status.ErrFailedPrecondition.Code, "dropping dead letters deletes events a target never applied: set confirm (prism dlq drop --yes)")
	}
	s, err := dlqStream(ctx, js)
	if err != nil {
		return DLQDropReply{}, err
	}
	dls, err := selectDeadLetters(ctx, s, req.DLQSelection)
	if err != nil {
		return DLQDropReply{}, err
	}
	out := DLQDropReply{Name: req.Name, Dropped: []uint64{}}
	for _, d := range dls {
		if err := deleteDeadLetter(ctx, s, req.Name, d.Seq); err != nil {
			return out, err
		}
		out.Dropped = append(out.Dropped, d.Seq)
	}
	out.Remaining, err = depth(ctx, s, req.Name)
	return out, err
}

// deleteDeadLetter deletes dead letter seq; one already gone is no error
// (a concurrent drop or redrive).
func deleteDeadLetter(ctx context.Context, s jetstream.Stream, ns string, seq uint64) error {
	err := s.DeleteMsg(ctx, seq)
	if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || isMsgNotFound(err) {
		return nil
	}
	return status.FromJetStream(err, ns, fmt.Sprintf("deleting dead letter %d", seq))
}

// isMsgNotFound reports JetStream's "no message found" API error.
func isMsgNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound
}

// copyEvent returns a copy of stream message m to publish again: its
// subject, payload and headers but JetStream's own (Nats-*), which were
// meant for the original publish.
func copyEvent(m *jetstream.RawStreamMsg) *nats.Msg {
	out := nats.NewMsg(m.Subject)
	for k, v := range m.Header {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			out.Header[k] = slices.Clone(v)
		}
	}
	out.Data = m.Data
	out.Header.Set(subjects.HeaderRedriveOf, strconv.FormatUint(m.Sequence, 10))
	return out
}
