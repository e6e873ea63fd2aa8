package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// DefaultRetention is how long audit records are kept unless configured.
const DefaultRetention = 90 * 24 * time.Hour

// duplicateWindow is the stream's duplicate window: a record the Writer
// sends again after an ack timeout, within it, is stored once (each record
// carries a Nats-Msg-Id).
const duplicateWindow = 2 * time.Minute

// maxReplicas is JetStream's largest replication factor.
const maxReplicas = 5

// StreamConfig is what is configurable of the audit stream.
type StreamConfig struct {
	// Retention is how long records are kept (the stream's MaxAge); 0 means
	// DefaultRetention. At least the duplicate window (two minutes).
	Retention time.Duration
	// Replicas is the stream's replication factor: 1 for a single server,
	// 3 for a cluster; 0 means 1.
	Replicas int
}

// streamConfig is the JetStream configuration of c.
func (c StreamConfig) streamConfig() (jetstream.StreamConfig, error) {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Retention < duplicateWindow {
		return jetstream.StreamConfig{}, status.Invalidf("audit retention %v is too short: it must be at least %v (0 means %v)", c.Retention, duplicateWindow, DefaultRetention)
	}
	if c.Replicas < 1 || c.Replicas > maxReplicas {
		return jetstream.StreamConfig{}, status.Invalidf("audit stream replicas %d: must be 1 to %d (1 for a single server, 3 for a cluster)", c.Replicas, maxReplicas)
	}
	return jetstream.StreamConfig{
		Name:        subjects.AuditStream,
		Description: "Prism audit records: one per data access",
		Subjects:    subjects.AuditSubjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.Retention,
		Replicas:    c.Replicas,
		Duplicates:  duplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
	}, nil
}

// EnsureStream creates the audit stream PRISM_AUDIT, or updates it to c
// (retention, replicas), and returns it. Call it from Prism's account.
//
// Errors: INVALID_ARGUMENT (status.ErrInvalidArgument) for a retention
// shorter than two minutes or replicas outside 1 to 5; PERMISSION_DENIED
// when the account may not manage the stream; UNAVAILABLE when JetStream
// does not answer, is not enabled for the account or refuses the
// configuration (e.g. 3 replicas on a single server).
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) (jetstream.Stream, error) {
	cfg, err := c.streamConfig()
	if err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, streamError("create or update the audit stream "+subjects.AuditStream, err)
	}
	return s, nil
}

// streamError classifies an error of a JetStream call on the audit stream
// made while doing what.
func streamError(what string, err error) *status.Error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &status.Error{Code: prismv1.Code_NOT_FOUND, Message: fmt.Sprintf("cannot %s: the stream does not exist; it is created by prism serve in the PRISM account: connect there", what), Err: err}
	case errors.Is(err, nats.ErrPermissionViolation), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return &status.Error{Code: prismv1.Code_PERMISSION_DENIED, Message: fmt.Sprintf("cannot %s: this account has no access to it; the audit stream lives in the PRISM account: connect with its credentials", what), Err: err}
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("cannot %s: JetStream does not answer; the audit stream needs JetStream in the PRISM account", what), Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &status.Error{Code: prismv1.Code_DEADLINE_EXCEEDED, Message: fmt.Sprintf("cannot %s: JetStream did not answer in time", what), Err: err}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("cannot %s: JetStream refused: %s (error %d)", what, apiErr.Description, apiErr.ErrorCode), Err: err}
	}
	return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("cannot %s", what), Err: err}
}
