package neptunetest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/prism-data/prism/backends/neptune/neptunetest"
)

// answer is what the server said to one request.
type answer struct {
	status  int
	code    string // error code, "" for a 200
	message string
	results []map[string]any
}

// send posts query with params to srv, signed with creds for service and
// region at signed (time.Now when zero); tamper may change the request
// after it is signed.
func send(t *testing.T, srv *neptunetest.Server, creds aws.Credentials, service, region string, signed time.Time, query string, params map[string]any, tamper func(*http.Request)) answer {
	t.Helper()
	ps, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	body := url.Values{"query": {query}, "parameters": {string(ps)}}.Encode()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/openCypher", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signed.IsZero() {
		signed = time.Now()
	}
	sum := sha256.Sum256([]byte(body))
	if service != "" {
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, signed); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code, DetailedMessage, RequestID string
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
			t.Fatalf("error answer %d not in Neptune's format: %s", resp.StatusCode, b)
		}
		a.code, a.message = e.Code, e.DetailedMessage
		return a
	}
	var ok struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || ok.Results == nil {
		t.Fatalf("answer not in Neptune's format: %s", b)
	}
	a.results = ok.Results
	return a
}

const checkpointQuery = "MATCH (c:PrismCheckpoint {prism_ns: $ns})\nRETURN c.prism_seq AS seq"

// TestSignatureRefused proves the stand-in refuses what Neptune's IAM
// authentication would, each with a 403 AccessDeniedException, and
// accepts the right signature.
func TestSignatureRefused(t *testing.T) {
	srv := neptunetest.New(t, "eu-central-1")
	good := srv.Credentials
	wrongSecret := good
	wrongSecret.SecretAccessKey = "not-the-secret"
	wrongKey := good
	wrongKey.AccessKeyID = "AKIAWRONG"
	noToken := good
	noToken.SessionToken = ""
	params := map[string]any{"ns": "x"}
	for _, c := range []struct {
		name, service, region string
		creds                 aws.Credentials
		signed                time.Time
		tamper                func(*http.Request)
		want                  string // sigv4test refusal type; "" accepted
	}{
		{"good", "neptune-db", "eu-central-1", good, time.Time{}, nil, ""},
		{"unsigned", "", "", good, time.Time{}, nil, "MissingAuthenticationTokenException"},
		{"wrong secret", "neptune-db", "eu-central-1", wrongSecret, time.Time{}, nil, "InvalidSignatureException"},
		{"wrong access key", "neptune-db", "eu-central-1", wrongKey, time.Time{}, nil, "UnrecognizedClientException"},
		{"no session token", "neptune-db", "eu-central-1", noToken, time.Time{}, nil, "UnrecognizedClientException"},
		{"wrong service", "neptune", "eu-central-1", good, time.Time{}, nil, "InvalidSignatureException"},
		{"wrong region", "neptune-db", "us-east-1", good, time.Time{}, nil, "InvalidSignatureException"},
		{"expired", "neptune-db", "eu-central-1", good, time.Now().Add(-6 * time.Minute), nil, "InvalidSignatureException"},
		{"from the future", "neptune-db", "eu-central-1", good, time.Now().Add(6 * time.Minute), nil, "InvalidSignatureException"},
		{"body changed after signing", "neptune-db", "eu-central-1", good, time.Time{}, func(r *http.Request) {
			body := url.Values{"query": {checkpointQuery}, "parameters": {`{"ns":"y"}`}}.Encode()
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		}, "InvalidSignatureException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Refused())
			a := send(t, srv, c.creds, c.service, c.region, c.signed, checkpointQuery, params, c.tamper)
			if c.want == "" {
				if a.status != http.StatusOK {
					t.Fatalf("a good request got %d %s: %s", a.status, a.code, a.message)
				}
				return
			}
			if a.status != http.StatusForbidden || a.code != "AccessDeniedException" {
				t.Errorf("answer %d %s, want 403 AccessDeniedException", a.status, a.code)
			}
			if got := srv.Refused()[before:]; !slices.Equal(got, []string{c.want}) {
				t.Errorf("refused for %v, want %s (%s)", got, c.want, a.message)
			}
		})
	}
	// A clock skew of the server counts like one of the client.
	srv.Skew(10 * time.Minute)
	if a := send(t, srv, good, "neptune-db", "eu-central-1", time.Time{}, checkpointQuery, params, nil); a.status != http.StatusForbidden {
		t.Errorf("a request 10 minutes behind the server's clock got %d", a.status)
	}
}

// TestUnknownQueriesRefused proves the interpreter runs the store's shapes
// only: anything else, or a known shape with wrong parameters, is
// refused loudly.
func TestUnknownQueriesRefused(t *testing.T) {
	srv := neptunetest.New(t, "")
	for _, c := range []struct {
		name, query string
		params      map[string]any
		wantCode    string
	}{
		{"another query", "MATCH (n) RETURN n", nil, "MalformedQueryException"},
		{"a changed shape", "MATCH (c:PrismCheckpoint {prism_ns: $ns}) RETURN c.prism_seq AS s", map[string]any{"ns": "x"}, "MalformedQueryException"},
		{"a batch with parts out of order", "MERGE (c:PrismCheckpoint {prism_ns: $ns}) WITH c WHERE coalesce(c.prism_seq, 0) = $expected RETURN c", map[string]any{"ns": "x", "expected": 0}, "MalformedQueryException"},
		{"neighbours without a literal limit", "MATCH (:PrismVertex {prism_ns: $ns, prism_id: $id})-[r:PRISM_EDGE]->(o:PrismVertex) WHERE (size($labels) = 0 OR r.prism_label IN $labels) AND (r.prism_label > $afterLabel OR (r.prism_label = $afterLabel AND o.prism_id > $afterID)) RETURN r.prism_label AS label, o.prism_id AS other, r.prism_props AS props, r.prism_rev AS rev ORDER BY label, other LIMIT $n", nil, "MalformedQueryException"},
		{"a missing parameter", checkpointQuery, nil, "InvalidParameterException"},
		{"a parameter of the wrong type", checkpointQuery, map[string]any{"ns": 7}, "InvalidParameterException"},
		{"an unused parameter", checkpointQuery, map[string]any{"ns": "x", "extra": 1}, "InvalidParameterException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, c.query, c.params, nil)
			if a.status != http.StatusBadRequest || a.code != c.wantCode {
				t.Errorf("answer %d %s (%s), want 400 %s", a.status, a.code, a.message, c.wantCode)
			}
		})
	}
	// Whitespace does not matter; the answer is Neptune's rows.
	a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, "  MATCH (c:PrismCheckpoint {prism_ns: $ns})\n\t RETURN   c.prism_seq AS seq ", map[string]any{"ns": "x"}, nil)
	if a.status != http.StatusOK || len(a.results) != 0 {
		t.Errorf("checkpoint of a new namespace = %d %v", a.status, a.results)
	}
}

// TestBatchIsOneTransaction proves a batch that fails part way (a bad
// parameter in its last part) leaves nothing behind, and that a guard
// that does not hold writes nothing.
func TestBatchIsOneTransaction(t *testing.T) {
	srv := neptunetest.New(t, "")
	batch := "MERGE (c:PrismCheckpoint {prism_ns: $ns}) WITH c WHERE coalesce(c.prism_seq, 0) = $expected " +
		"UNWIND $vput AS vp MERGE (v:PrismVertex {prism_ns: $ns, prism_id: vp.id}) SET v.prism_label = vp.label, v.prism_props = vp.props, v.prism_rev = vp.rev WITH DISTINCT c " +
		"UNWIND $eput AS ep MERGE (a:PrismVertex {prism_ns: $ns, prism_id: ep.from}) MERGE (b:PrismVertex {prism_ns: $ns, prism_id: ep.to}) MERGE (a)-[r:PRISM_EDGE {prism_label: ep.label}]->(b) SET r.prism_props = ep.props, r.prism_rev = ep.rev WITH DISTINCT c " +
		"SET c.prism_seq = $through RETURN c.prism_seq AS seq"
	vput := []any{map[string]any{"id": "a", "label": "n", "props": "{}", "rev": 1}}
	bad := map[string]any{"ns": "x", "expected": 0, "through": 2, "vput": vput, "eput": []any{map[string]any{"from": "a", "label": "l", "to": "b", "props": "{}", "rev": "two"}}}
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, batch, bad, nil); a.status != http.StatusBadRequest {
		t.Fatalf("bad batch answered %d", a.status)
	}
	vertex := "MATCH (v:PrismVertex {prism_ns: $ns, prism_id: $id}) WHERE v.prism_rev IS NOT NULL RETURN v.prism_label AS label, v.prism_props AS props, v.prism_rev AS rev"
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, vertex, map[string]any{"ns": "x", "id": "a"}, nil); len(a.results) != 0 {
		t.Errorf("the failed batch left vertex a: %v", a.results)
	}
	good := map[string]any{"ns": "x", "expected": 0, "through": 2, "vput": vput, "eput": []any{map[string]any{"from": "a", "label": "l", "to": "b", "props": "{}", "rev": 2}}}
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, batch, good, nil); len(a.results) != 1 {
		t.Fatalf("good batch = %d %v", a.status, a.results)
	}
	// The same batch again: the checkpoint is 2, not 0; nothing is written.
	again := map[string]any{"ns": "x", "expected": 0, "through": 3, "vput": []any{map[string]any{"id": "a", "label": "changed", "props": "{}", "rev": 3}}, "eput": good["eput"]}
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, batch, again, nil); a.status != http.StatusOK || len(a.results) != 0 {
		t.Errorf("a batch whose guard fails = %d %v, want no row", a.status, a.results)
	}
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, vertex, map[string]any{"ns": "x", "id": "a"}, nil); len(a.results) != 1 || a.results[0]["label"] != "n" {
		t.Errorf("vertex a = %v, want label n", a.results)
	}
	// b exists only as the stub the edge needed: GetVertex's shape skips it.
	if a := send(t, srv, srv.Credentials, "neptune-db", srv.Region, time.Time{}, vertex, map[string]any{"ns": "x", "id": "b"}, nil); len(a.results) != 0 {
		t.Errorf("stub b = %v", a.results)
	}
}
