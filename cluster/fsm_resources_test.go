package cluster

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

func cmdPutResource(apiID string, r *pb.Resource, create bool) *pb.Command {
	return &pb.Command{Body: &pb.Command_PutResource{PutResource: &pb.PutResource{RestApiId: apiID, Resource: r, Create: create}}}
}

func getPets(key bool, uri string) map[string]*pb.Method {
	return map[string]*pb.Method{"GET": {HttpMethod: "GET", AuthorizationType: "NONE", ApiKeyRequired: key,
		Integration: &pb.Integration{Type: "HTTP_PROXY", HttpMethod: "GET", Uri: uri}}}
}

// TestFSMResources: resources change through commands, a deployment
// snapshots the tree, later edits leave the snapshot alone, deleting a
// resource deletes what is under it, and deleting the API its trees.
func TestFSMResources(t *testing.T) {
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	root := rules.RootResourceID("a1")
	h.ok(cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets"}, true))
	h.ok(cmdPutResource("a1", &pb.Resource{Id: "pid", ParentId: "pets", PathPart: "{id}"}, true))
	h.ok(cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets", Methods: getPets(true, "http://b/pets")}, false))
	h.ok(cmdDeploy("a1", "d1", "prod"))
	snap := h.f.Config().DeploymentResources["a1/d1"]
	if snap.GetResources()["pets"].GetMethods()["GET"] == nil || len(snap.GetResources()) != 3 {
		t.Fatalf("deployment snapshot %v", snap)
	}
	h.ok(&pb.Command{Body: &pb.Command_DeleteResource{DeleteResource: &pb.DeleteResource{RestApiId: "a1", Id: "pets"}}})
	if got := h.f.Config().Resources["a1"].GetResources(); len(got) != 1 || got[root] == nil {
		t.Fatalf("after deleting /pets the tree holds %v", got)
	}
	if !proto.Equal(h.f.Config().DeploymentResources["a1/d1"], snap) {
		t.Fatal("an edit after the deployment changed its snapshot")
	}
	// A deployment of a tree without methods snapshots nothing: the stage
	// keeps its url.
	h.ok(cmdDeploy("a1", "d2", "prod"))
	if h.f.Config().DeploymentResources["a1/d2"] != nil {
		t.Fatal("a tree without methods was snapshotted")
	}
	h.ok(&pb.Command{Body: &pb.Command_DeleteRestApi{DeleteRestApi: &pb.DeleteRestApi{Id: "a1"}}})
	if c := h.f.Config(); len(c.Resources) != 0 || len(c.DeploymentResources) != 0 {
		t.Fatalf("deleting the API left %d trees and %d snapshots", len(c.Resources), len(c.DeploymentResources))
	}
}

// TestFSMRefusesForgedResourceCommands: commands the admin API would not
// send are refused with the rules' messages and change nothing.
func TestFSMRefusesForgedResourceCommands(t *testing.T) {
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	root := rules.RootResourceID("a1")
	h.ok(cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets"}, true))
	badMethod := getPets(false, "ftp://b/")
	noAuth := getPets(false, "http://b/")
	noAuth["GET"].AuthorizationType = ""
	for _, tc := range []struct {
		name string
		cmd  *pb.Command
		code pb.ErrorCode
		want string
	}{
		{"no such API", cmdPutResource("zz", &pb.Resource{Id: "x", ParentId: "r", PathPart: "x"}, true), codeNotFound, "Invalid API identifier"},
		{"bad path part", cmdPutResource("a1", &pb.Resource{Id: "x", ParentId: root, PathPart: "a/b"}, true), codeBad, "Resource's path part only allow"},
		{"missing parent", cmdPutResource("a1", &pb.Resource{Id: "x", ParentId: "nope", PathPart: "x"}, true), codeNotFound, "Invalid Resource identifier"},
		{"same name", cmdPutResource("a1", &pb.Resource{Id: "x", ParentId: root, PathPart: "pets"}, true), codeBad, "Another resource with the same parent"},
		{"taken id", cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "y"}, true), codeConflict, "already exists"},
		{"update of a missing resource", cmdPutResource("a1", &pb.Resource{Id: "x", ParentId: root, PathPart: "x"}, false), codeNotFound, "Invalid Resource identifier"},
		{"cycle", cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: "pets", PathPart: "pets"}, false), codeBad, "more than 64 levels deep, or in a cycle"},
		{"integration uri", cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets", Methods: badMethod}, false), codeBad, "Invalid HTTP endpoint"},
		{"no authorization type", cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets", Methods: noAuth}, false), codeBad, "Invalid authorization type"},
		{"root delete", &pb.Command{Body: &pb.Command_DeleteResource{DeleteResource: &pb.DeleteResource{RestApiId: "a1", Id: root}}}, codeBad, "Cannot delete the root"},
		{"tree without root", &pb.Command{Body: &pb.Command_PutResourceTree{PutResourceTree: &pb.PutResourceTree{RestApiId: "a1",
			Tree: &pb.ResourceTree{Resources: map[string]*pb.Resource{"x": {Id: "x", PathPart: "x"}}}}}}, codeBad, "parent"},
		{"stale revision", &pb.Command{Body: &pb.Command_PutResource{PutResource: &pb.PutResource{RestApiId: "a1",
			Resource: &pb.Resource{Id: "pets", ParentId: root, PathPart: "dogs"}, IfRevision: 1}}}, codeConflict, "changed concurrently"},
		{"deploy a method without integration", nil, codeBad, "No integration defined for method"},
	} {
		cmd := tc.cmd
		if cmd == nil {
			m := getPets(false, "http://b/")
			m["GET"].Integration = nil
			if r := h.apply(cmdPutResource("a1", &pb.Resource{Id: "pets", ParentId: root, PathPart: "pets", Methods: m}, false)); r.Code != codeNone {
				t.Fatal(r)
			}
			cmd = cmdDeploy("a1", "d1", "prod")
		}
		before := h.f.Config()
		res := h.apply(cmd)
		if res.Code != tc.code || !strings.Contains(res.Message, tc.want) {
			t.Errorf("%s: %v %q; want %v %q", tc.name, res.Code, res.Message, tc.code, tc.want)
		}
		if h.f.Config() != before {
			t.Errorf("%s: a refused command changed the configuration", tc.name)
		}
	}
}

// TestFSMResourceTreesSnapshotAndRestoreChecks: trees survive a snapshot
// round trip, and Restore refuses a snapshot holding a tree no command
// could have written.
func TestFSMResourceTreesSnapshotAndRestoreChecks(t *testing.T) {
	h := newTestFSM(t, t0)
	h.ok(cmdCreateAPI("a1"))
	root := rules.RootResourceID("a1")
	h.ok(&pb.Command{Body: &pb.Command_PutResourceTree{PutResourceTree: &pb.PutResourceTree{RestApiId: "a1", Tree: &pb.ResourceTree{
		Resources: map[string]*pb.Resource{root: {Id: root}, "pets": {Id: "pets", ParentId: root, PathPart: "pets", Methods: getPets(true, "http://b/")}}}}}})
	h.ok(cmdDeploy("a1", "d1", "prod"))
	data := persist(t, h.f)
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config(), h.f.Config()) {
		t.Fatal("restored trees differ")
	}
	for _, tc := range []struct {
		name   string
		change func(s *pb.Snapshot)
		want   string
	}{
		{"a path part with a slash", func(s *pb.Snapshot) { s.Config.Resources["a1"].Resources["pets"].PathPart = "a/b" }, `resources "a1"`},
		{"a tree of a missing API", func(s *pb.Snapshot) { s.Config.Resources["zz"] = &pb.ResourceTree{} }, "of an API that does not exist"},
		{"a deployed method with a bad integration", func(s *pb.Snapshot) {
			s.Config.DeploymentResources["a1/d1"].Resources["pets"].Methods["GET"].Integration.Type = "AWS"
		}, `deployment resources "a1/d1"`},
	} {
		s := decodeSnapshot(t, data)
		tc.change(s)
		f := NewFSM()
		before := f.Config()
		err := f.Restore(nopCloser{bytes.NewReader(mustMarshal(t, s))})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
		if f.Config() != before {
			t.Errorf("%s: a refused snapshot replaced the state", tc.name)
		}
	}
}
