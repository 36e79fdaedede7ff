package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
)

func TestClusterStatus(t *testing.T) {
	// Without a status source the route says so in the API's error shape.
	e := newEnv(t)
	wantError(t, e.do("GET", "/cluster", nil), 404, "NotFoundException", "This node serves no cluster status")

	srv, err := New(Config{Store: clustertest.NewMemStore(cluster.NewFSM()), ClusterStatus: func() any {
		return map[string]any{"leader": "n1", "members": []map[string]string{{"id": "n1"}}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, localRequest(http.MethodGet, "/cluster", nil))
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != `{"leader":"n1","members":[{"id":"n1"}]}` {
		t.Fatalf("GET /cluster = %d %q", rec.Code, rec.Body.String())
	}
}
