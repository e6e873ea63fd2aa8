package kmstest

import (
	"net/http"

	"github.com/prism-data/prism/internal/sigv4test"
)

// refusal is a request the server answers with a KMS error.
type refusal struct {
	status int
	typ    string
	msg    string
}

func (r *refusal) Error() string { return r.typ + ": " + r.msg }

func refuse(status int, typ, msg string) *refusal { return &refusal{status, typ, msg} }

// verify checks r's SigV4 signature over body with sigv4test: signed for
// service "kms" in the server's region with its credentials, on the
// server's clock, X-Amz-Target and Content-Type signed. A refusal is a
// KMS error of status 400.
func (s *Server) verify(r *http.Request, body []byte) *refusal {
	v := sigv4test.Verifier{
		Credentials: s.Credentials,
		Service:     "kms",
		Region:      s.Region,
		Signed:      []string{"x-amz-target", "content-type"},
		Now:         s.now,
	}
	if rf := v.Verify(r, body); rf != nil {
		return refuse(400, rf.Type, rf.Message)
	}
	return nil
}
