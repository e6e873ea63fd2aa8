package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestGetAndScanPaginate(t *testing.T) {
	e := newEnv(t, envConfig{})
	put := &prismv1.PutRequest{Id: []byte("rec")}
	for i := range 5 {
		put.Items = append(put.Items, &prismv1.Item{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	var last prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), put, &last)
	for _, id := range []string{"b", "a", "c"} {
		mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq(id, "k", "v"), &last)
	}

	for _, encoding := range []enc{encJSON, encProto} {
		t.Run("get/"+encoding.String(), func(t *testing.T) {
			var keys []string
			token := ""
			for page := 0; ; page++ {
				var resp prismv1.GetResponse
				req := &prismv1.GetRequest{Id: []byte("rec"), PageSize: 2, PageToken: token, MinSeq: last.GetSeq()}
				if er := call(t, e.nc, subjects.Read(testNS, "get"), req, &resp, encoding); er != nil {
					t.Fatalf("page %d: %v", page, er)
				}
				if resp.GetRevision() != 1 {
					t.Errorf("revision %d, want 1", resp.GetRevision())
				}
				for _, it := range resp.GetItems() {
					keys = append(keys, string(it.GetKey()))
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
				if page > 5 {
					t.Fatal("too many pages")
				}
			}
			if got := strings.Join(keys, ","); got != "k0,k1,k2,k3,k4" {
				t.Fatalf("keys %s", got)
			}
		})
	}

	t.Run("get range", func(t *testing.T) {
		var resp prismv1.GetResponse
		mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("rec"), Range: &prismv1.KeyRange{Start: []byte("k1"), End: []byte("k3")}}, &resp)
		if len(resp.GetItems()) != 2 || string(resp.GetItems()[1].GetValue()) != "v2" {
			t.Fatalf("range [k1,k3): %v", resp.GetItems())
		}
	})

	t.Run("scan", func(t *testing.T) {
		var ids []string
		token := ""
		for page := 0; page < 5; page++ {
			var resp prismv1.ScanResponse
			mustCall(t, e.nc, subjects.Read(testNS, "scan"), &prismv1.ScanRequest{PageSize: 3, PageToken: token, MinSeq: last.GetSeq()}, &resp)
			for _, id := range resp.GetIds() {
				ids = append(ids, string(id))
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if got := strings.Join(ids, ","); got != "a,b,c,rec" {
			t.Fatalf("ids %s", got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		er := call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("nobody")}, &prismv1.GetResponse{}, encJSON)
		if !isCode(er, prismv1.Code_NOT_FOUND) || !strings.Contains(er.GetMessage(), `"nobody" not found in namespace demo`) {
			t.Fatalf("get of a missing record: %v", er)
		}
	})
}

func TestMinSeqWaitsForProjection(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.proj.Pause()
	var w prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "k", "v"), &w)

	type result struct {
		resp prismv1.GetResponse
		er   *prismv1.Error
	}
	done := make(chan *result, 1)
	go func() {
		res := new(result)
		res.er = call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: w.GetSeq()}, &res.resp, encProto)
		done <- res
	}()
	select {
	case res := <-done:
		t.Fatalf("get with min_seq answered while the projection is paused: %v %v", &res.resp, res.er)
	case <-time.After(200 * time.Millisecond):
	}
	e.proj.Resume()
	res := <-done
	if res.er != nil || res.resp.GetRevision() != w.GetSeq() || string(res.resp.GetItems()[0].GetValue()) != "v" {
		t.Fatalf("get after resume: %v %v", &res.resp, res.er)
	}
}

func TestMinSeqNotConsistentYet(t *testing.T) {
	for _, c := range []namespaces.Consistency{"eventual", "read-your-writes", "strong"} {
		t.Run(string(c), func(t *testing.T) {
			e := newEnv(t, envConfig{consistency: c, waiter: stuckWaiter{}, opts: []gateway.Option{gateway.WithConsistencyWait(100 * time.Millisecond)}})
			er := call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: 7}, &prismv1.GetResponse{}, encJSON)
			if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) || !strings.Contains(er.GetMessage(), "min_seq 7") {
				t.Fatalf("get: %v, want NOT_CONSISTENT_YET", er)
			}
			er = call(t, e.nc, subjects.Read(testNS, "scan"), &prismv1.ScanRequest{MinSeq: 7}, &prismv1.ScanResponse{}, encProto)
			if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) {
				t.Fatalf("scan: %v, want NOT_CONSISTENT_YET", er)
			}
		})
	}
}
