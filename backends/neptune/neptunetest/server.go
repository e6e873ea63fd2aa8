// Package neptunetest is a stand-in for an Amazon Neptune cluster's
// openCypher HTTPS endpoint, for tests only (a real Neptune is not
// reachable from CI). It checks each request as Neptune would: POST
// /openCypher, form-encoded query and parameters, a SigV4 signature for
// service neptune-db in its region, recomputed with the SDK's signer from
// credentials made for the test (internal/sigv4test); a refusal is
// answered 403 AccessDeniedException as Neptune does.
//
// It then executes the query against an in-memory graph. It understands
// exactly the openCypher shapes backends/neptune sends (its own copy of
// each text, whitespace aside) and answers any other query
// MalformedQueryException, so a new query shape fails the tests loudly
// until the stand-in learns it. Answers are Neptune's: {"results": [...]}
// rows of the RETURN columns; errors {"requestId", "code",
// "detailedMessage"}. A query runs as one transaction: a failure part way
// (or an injected fault) rolls back all it changed.
//
// Faults can be injected: Fail answers the next n requests with a Neptune
// error (ThrottlingException, ConcurrentModificationException, ...)
// without running them; LoseAnswers runs and commits the next n batches,
// then drops the connection before answering.
package neptunetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/prism-data/prism/internal/sigv4test"
)

// Service is the SigV4 service name requests must be signed for.
const Service = "neptune-db"

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the HTTPS endpoint (https://127.0.0.1:PORT).
	URL string
	// Region is the region requests must be signed for.
	Region string
	// Credentials are the only credentials the server accepts.
	Credentials aws.Credentials

	ts    *httptest.Server
	clock sigv4test.Clock

	mu       sync.Mutex
	g        *graph
	faults   []fault
	lose     int
	requests []Request
	refused  []string
}

// Request is a request the server accepted (signature valid) and ran or
// failed on purpose.
type Request struct {
	// Query is the query text as sent; Shape the name of the shape it
	// matched ("batch", "get vertex", ...; "" if none).
	Query, Shape string
	// Params are the decoded parameters.
	Params map[string]any
}

type fault struct {
	shape     string
	status    int
	code, msg string
	n         int
}

// New starts a stand-in for region (us-east-1 when empty) with fresh
// credentials (with a session token), closed when t ends.
func New(t testing.TB, region string) *Server {
	t.Helper()
	if region == "" {
		region = "us-east-1"
	}
	s := &Server{
		Region:      region,
		Credentials: sigv4test.NewCredentials(t, "neptunetest"),
		g:           newGraph(),
	}
	s.ts = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	t.Cleanup(s.ts.Close)
	return s
}

// HTTPClient is an HTTP client that trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client { return s.ts.Client() }

// Env points the AWS SDK's default chain at the server for the test
// (sigv4test.Env): its region, its credentials in AWS_ACCESS_KEY_ID and
// friends, its certificate in AWS_CA_BUNDLE; nothing of the machine's own
// AWS setup is read.
func (s *Server) Env(t *testing.T) {
	t.Helper()
	sigv4test.Env(t, s.Region, s.Credentials, s.ts.Certificate(), nil)
}

// CredentialsProvider returns a provider of the server's credentials.
func (s *Server) CredentialsProvider() aws.CredentialsProvider {
	c := s.Credentials
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// Fail answers the next n requests (after their signature is checked)
// with HTTP status and Neptune error code, without running them.
func (s *Server) Fail(status int, code string, n int) { s.FailShape("", status, code, n) }

// FailShape is Fail for the requests of one shape only ("batch",
// "checkpoint", "get vertex", "get edge", "neighbours", "level",
// "export", "drop"); "" matches every shape.
func (s *Server) FailShape(shape string, status int, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{shape: shape, status: status, code: code, msg: "injected by the test", n: n})
}

// ClearFaults drops the faults not yet used.
func (s *Server) ClearFaults() { s.mu.Lock(); s.faults = nil; s.mu.Unlock() }

// LoseAnswers runs and commits the next n batch requests, then drops
// each connection before answering: a client sees a network error for a
// write that happened.
func (s *Server) LoseAnswers(n int) { s.mu.Lock(); s.lose += n; s.mu.Unlock() }

// Skew sets the server's clock to the real time plus d: a request signed
// more than 5 minutes from the server's time is refused as expired.
func (s *Server) Skew(d time.Duration) { s.clock.Skew(d) }

// Requests returns the requests accepted so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Refused returns the reasons (sigv4test refusal types) of the requests
// refused for their signature, in order.
func (s *Server) Refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

// neptuneError is an error answer.
type neptuneError struct {
	status    int
	code, msg string
}

func (e *neptuneError) Error() string { return e.code + ": " + e.msg }

func malformed(msg string) *neptuneError {
	return &neptuneError{status: 400, code: "MalformedQueryException", msg: msg}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 150<<20))
	if err != nil {
		answerError(w, &neptuneError{400, "BadRequestException", "cannot read the request body"})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/openCypher" {
		answerError(w, &neptuneError{400, "BadRequestException", "the stand-in serves POST /openCypher only, not " + r.Method + " " + r.URL.Path})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		answerError(w, &neptuneError{400, "BadRequestException", "Content-Type must be application/x-www-form-urlencoded, not " + ct})
		return
	}
	v := sigv4test.Verifier{Credentials: s.Credentials, Service: Service, Region: s.Region, Signed: []string{"content-type"}, Now: s.clock.Now}
	if rf := v.Verify(r, body); rf != nil {
		s.mu.Lock()
		s.refused = append(s.refused, rf.Type)
		s.mu.Unlock()
		answerError(w, &neptuneError{403, "AccessDeniedException", rf.Error()})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["query"]) != 1 || len(form["parameters"]) > 1 {
		answerError(w, &neptuneError{400, "MissingParameterException", "exactly one query (and at most one parameters) form field"})
		return
	}
	params := map[string]any{}
	if ps := form.Get("parameters"); ps != "" {
		d := json.NewDecoder(bytes.NewReader([]byte(ps)))
		d.UseNumber()
		if err := d.Decode(&params); err != nil {
			answerError(w, &neptuneError{400, "InvalidParameterException", "parameters: " + err.Error()})
			return
		}
	}
	rows, shape, lose, nerr := s.run(form.Get("query"), params)
	if lose {
		panic(http.ErrAbortHandler)
	}
	if nerr != nil {
		answerError(w, nerr)
		return
	}
	_ = shape
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"results": rows})
}

// run records the request and executes it, unless a fault is due.
func (s *Server) run(query string, params map[string]any) (rows []map[string]any, shape string, lose bool, err *neptuneError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := Request{Query: query, Params: params}
	defer func() { s.requests = append(s.requests, req) }()
	rows, req.Shape, err = s.g.exec(query, params)
	for i := range s.faults {
		if f := &s.faults[i]; f.shape == "" || f.shape == req.Shape {
			nerr := &neptuneError{f.status, f.code, f.msg}
			if f.n--; f.n <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			s.g.rollback()
			return nil, req.Shape, false, nerr
		}
	}
	if err != nil {
		s.g.rollback()
		return nil, req.Shape, false, err
	}
	s.g.commit()
	if s.lose > 0 && req.Shape == "batch" {
		s.lose--
		return nil, req.Shape, true, nil
	}
	return rows, req.Shape, false, nil
}

func answerError(w http.ResponseWriter, e *neptuneError) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"requestId": requestID(), "code": e.code, "detailedMessage": e.msg})
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
