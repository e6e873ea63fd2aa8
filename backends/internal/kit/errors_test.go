package kit

import (
	"errors"
	"fmt"
	"testing"
)

var (
	errRequest = errors.New("bad request")
	errToken   = errors.New("bad token")
	errBatch   = errors.New("bad batch")
	testErrors = Errors{
		InvalidRequest: errRequest, InvalidPageToken: errToken, InvalidBatch: errBatch,
		Change: func(index int, seq uint64, reason string) error {
			return fmt.Errorf("change %d seq %d: %s", index, seq, reason)
		},
	}
)

func TestErrorsRequest(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       error
		wantIs   error
		wantText string
	}{
		{"request", &RequestError{Detail: "nil request"}, errRequest, "bad request: nil request"},
		{"token", &RequestError{Token: true, Detail: `"x"`}, errToken, `bad token: "x"`},
		{"wrapped", fmt.Errorf("ctx: %w", &RequestError{Detail: "d"}), errRequest, "bad request: d"},
		{"other", errBatch, errBatch, "bad batch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := testErrors.Request(tt.in)
			if !errors.Is(err, tt.wantIs) || err.Error() != tt.wantText {
				t.Errorf("Request = %v, want %q matching %v", err, tt.wantText, tt.wantIs)
			}
		})
	}
	if err := testErrors.Request(nil); err != nil {
		t.Errorf("Request(nil) = %v", err)
	}
}

func TestErrorsBatch(t *testing.T) {
	if err := testErrors.Batch(nil); err != nil {
		t.Errorf("Batch(nil) = %v", err)
	}
	if err := testErrors.Batch(&Fault{Reason: "change 0 has seq 0"}); !errors.Is(err, errBatch) || err.Error() != "bad batch: change 0 has seq 0" {
		t.Errorf("Batch of a batch fault = %v", err)
	}
	if err := testErrors.Batch(&Fault{Change: true, Index: 2, Seq: 7, Reason: "nil event"}); err == nil || err.Error() != "change 2 seq 7: nil event" {
		t.Errorf("Batch of a change fault = %v", err)
	}
}
