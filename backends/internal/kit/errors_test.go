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
		Change: func(e ChangeError) error {
			return fmt.Errorf("change %d seq %d: %s", e.Index, e.Seq, e.Reason)
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

func TestChangeError(t *testing.T) {
	err := error(&ChangeError{Index: 2, Seq: 7, Reason: "nil event"})
	if got, want := err.Error(), "invalid change: change 2 (seq 7): nil event"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || !p.Permanent() {
		t.Errorf("%v is not permanent", err)
	}
}

func TestInvalidArgument(t *testing.T) {
	a, b := InvalidArgument("invalid request"), InvalidArgument("invalid request")
	if errors.Is(a, b) || !errors.Is(fmt.Errorf("x: %w", a), a) {
		t.Errorf("InvalidArgument sentinels are not distinct: %v, %v", a, b)
	}
	var ia interface{ InvalidArgument() bool }
	if !errors.As(fmt.Errorf("x: %w", a), &ia) || !ia.InvalidArgument() || a.Error() != "invalid request" {
		t.Errorf("InvalidArgument(%q) = %v does not blame the request", "invalid request", a)
	}
}
