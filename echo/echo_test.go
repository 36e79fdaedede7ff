package echo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func getJSON(t *testing.T, c *http.Client, req *http.Request, v any) string {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d %q, want 200 application/json", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return string(body)
}

// TestReply: the answer names the method, path, query, request id,
// X-Forwarded-For and peer, and never repeats the API key.
func TestReply(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	const key = "k3y-v4lue-never-echoed"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/pets/7?limit=2&x=y", strings.NewReader(`{"a":1}`))
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("X-Amzn-Requestid", "rid-1")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Tollgate-Key-Id", "k1")
	req.Header.Set("X-Tollgate-Node", "tg2")
	var got Reply
	body := getJSON(t, srv.Client(), req, &got)
	want := Reply{Method: "POST", Path: "/pets/7", Query: "limit=2&x=y", RequestID: "rid-1", ForwardedFor: "203.0.113.9", Peer: "127.0.0.1",
		KeyID: "k1", Node: "tg2"}
	if got != want {
		t.Fatalf("reply %+v, want %+v", got, want)
	}
	if strings.Contains(body, key) {
		t.Fatalf("the body repeats the API key: %s", body)
	}

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header.Set("X-Request-Id", "rid-2")
	if getJSON(t, srv.Client(), req, &got); got.RequestID != "rid-2" {
		t.Fatalf("request id %q, want X-Request-Id's rid-2", got.RequestID)
	}
}

// TestCounts: concurrent requests are all counted, by path, query, peer,
// key id and node; reading the counts is not counted.
func TestCounts(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/w%d?i=%d", srv.URL, w%2, i%5), nil)
				req.Header.Set(HeaderKeyID, fmt.Sprintf("k%d", w%2))
				req.Header.Set(HeaderNode, fmt.Sprintf("tg%d", w%4))
				resp, err := srv.Client().Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var c Counts
	for range 2 { // the second read sees the same: reads are not counted
		req, _ := http.NewRequest(http.MethodGet, srv.URL+CountsPath, nil)
		getJSON(t, srv.Client(), req, &c)
	}
	if c.Total != workers*each {
		t.Fatalf("total %d, want %d", c.Total, workers*each)
	}
	wantPath := map[string]int64{"/w0": workers * each / 2, "/w1": workers * each / 2}
	if fmt.Sprint(c.ByPath) != fmt.Sprint(wantPath) {
		t.Errorf("byPath %v, want %v", c.ByPath, wantPath)
	}
	if len(c.ByQuery) != 5 || c.ByQuery["i=0"] != workers*each/5 {
		t.Errorf("byQuery %v, want 5 queries of %d", c.ByQuery, workers*each/5)
	}
	if c.ByPeer["127.0.0.1"] != workers*each || len(c.ByPeer) != 1 {
		t.Errorf("byPeer %v, want all from 127.0.0.1", c.ByPeer)
	}
	wantKey := map[string]int64{"k0": workers * each / 2, "k1": workers * each / 2}
	if fmt.Sprint(c.ByKey) != fmt.Sprint(wantKey) {
		t.Errorf("byKey %v, want %v", c.ByKey, wantKey)
	}
	wantNode := map[string]int64{"tg0": workers * each / 4, "tg1": workers * each / 4, "tg2": workers * each / 4, "tg3": workers * each / 4}
	if fmt.Sprint(c.ByNode) != fmt.Sprint(wantNode) {
		t.Errorf("byNode %v, want %v", c.ByNode, wantNode)
	}
}

// TestCountsBounded: past maxKeys distinct paths, new ones count as Other.
func TestCountsBounded(t *testing.T) {
	s := New()
	const extra = 5
	for i := range maxKeys + extra {
		r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/p%d", i), nil)
		s.ServeHTTP(httptest.NewRecorder(), r)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, CountsPath, nil))
	var c Counts
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Total != maxKeys+extra || len(c.ByPath) != maxKeys+1 || c.ByPath[Other] != extra {
		t.Fatalf("total %d, %d paths, %d other; want %d, %d, %d", c.Total, len(c.ByPath), c.ByPath[Other], maxKeys+extra, maxKeys+1, extra)
	}
}
