package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
)

func TestDoubleJSON(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{2, "2.0"}, {0, "0.0"}, {0.1, "0.1"}, {1e9, "1000000000.0"}, {1e21, "1e+21"}, {-3, "-3.0"}, {math.NaN(), "0.0"}} {
		b, err := json.Marshal(double(c.in))
		if err != nil || string(b) != c.want {
			t.Errorf("double(%v) = %s, %v; want %s", c.in, b, err, c.want)
		}
	}
}

func TestTwoServersShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := clustertest.NewMemStore(cluster.NewFSM())
	log := slog.New(slog.DiscardHandler)
	a, err := New(Config{Store: store, Registry: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Store: store, Registry: reg, Logger: log})
	if err != nil {
		t.Fatalf("second server on the same registry: %v", err)
	}
	for _, s := range []*Server{a, b} {
		s.ServeHTTP(httptest.NewRecorder(), localRequest("GET", "/account", nil))
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, localRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Result().Body)
	if !strings.Contains(string(body), `tollgate_admin_requests_total{code="200",route="GET /account"} 2`) {
		t.Fatalf("shared metrics do not add up:\n%s", body)
	}
	// Without a registry the server keeps a private one and still serves it.
	c, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	c.ServeHTTP(w, localRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("metrics without a registry: %d", w.Code)
	}
}
