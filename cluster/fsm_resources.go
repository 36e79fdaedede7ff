package cluster

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// An API's resources live in Config.Resources (the working copy the admin
// API edits) and Config.DeploymentResources (what each deployment
// snapshotted, which stages serve). An API without an entry has only its
// root resource, rules.RootResourceID.

// workingTree returns the working tree of an API in c, made if missing,
// for c (a private copy) to be changed in place.
func workingTree(c *pb.Config, apiID string) *pb.ResourceTree {
	if c.Resources == nil {
		c.Resources = map[string]*pb.ResourceTree{}
	}
	t := c.Resources[apiID]
	if t == nil {
		root := rules.RootResourceID(apiID)
		t = &pb.ResourceTree{Resources: map[string]*pb.Resource{root: {Id: root}}}
		c.Resources[apiID] = t
	}
	if t.Resources == nil {
		t.Resources = map[string]*pb.Resource{}
	}
	return t
}

func checkTree(apiID string, t *pb.ResourceTree) *pb.Result {
	return refused(rules.Tree(apiID, t))
}

func applyPutResource(a *applyCtx, c *pb.Config, m *pb.PutResource) *pb.Result {
	r := m.GetResource()
	if r == nil {
		return fail(codeBad, "Resource is missing")
	}
	if _, ok := c.RestApis[m.RestApiId]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	if res := badID("Resource", r.Id); res != nil {
		return res
	}
	t := workingTree(c, m.RestApiId)
	if m.IfRevision != 0 && m.IfRevision != t.Revision {
		return fail(codeConflict, "The resources of API %s were changed concurrently; retry", m.RestApiId)
	}
	_, exists := t.Resources[r.Id]
	switch {
	case m.Create && exists:
		return fail(codeConflict, "Resource %s already exists", r.Id)
	case !m.Create && !exists:
		return fail(codeNotFound, "Invalid Resource identifier specified")
	case m.Create && t.Resources[r.ParentId] == nil:
		return fail(codeNotFound, "Invalid Resource identifier specified")
	}
	t.Resources[r.Id] = r
	if res := checkTree(m.RestApiId, t); res != nil {
		return res
	}
	t.Revision = a.index
	return &pb.Result{Id: r.Id}
}

func applyDeleteResource(a *applyCtx, c *pb.Config, m *pb.DeleteResource) *pb.Result {
	if _, ok := c.RestApis[m.RestApiId]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	t := workingTree(c, m.RestApiId)
	if t.Resources[m.Id] == nil {
		return fail(codeNotFound, "Invalid Resource identifier specified")
	}
	if m.Id == rules.RootResourceID(m.RestApiId) {
		return fail(codeBad, "Cannot delete the root resource")
	}
	// Delete the resource and its descendants: repeat until no resource
	// has a deleted parent (bounded by the tree's size).
	gone := map[string]bool{m.Id: true}
	for range len(t.Resources) {
		grew := false
		for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
			if !gone[id] && gone[t.Resources[id].GetParentId()] {
				gone[id], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	for id := range gone {
		delete(t.Resources, id)
	}
	t.Revision = a.index
	return &pb.Result{Id: m.Id}
}

func applyPutResourceTree(a *applyCtx, c *pb.Config, m *pb.PutResourceTree) *pb.Result {
	switch {
	case m.CreateApi != nil:
		if m.CreateApi.Id != m.RestApiId {
			return fail(codeBad, "the API to create is not the API of the resources")
		}
		if res := applyCreateRestApi(a, c, &pb.CreateRestApi{Api: m.CreateApi}); res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			return res
		}
	case m.UpdateApi != nil:
		if m.UpdateApi.Id != m.RestApiId {
			return fail(codeBad, "the API to update is not the API of the resources")
		}
		if res := applyUpdateRestApi(a, c, &pb.UpdateRestApi{Api: m.UpdateApi}); res.Code != pb.ErrorCode_ERROR_CODE_NONE {
			return res
		}
	}
	if _, ok := c.RestApis[m.RestApiId]; !ok {
		return fail(codeNotFound, "Invalid API identifier specified")
	}
	t := m.GetTree()
	if t == nil {
		return fail(codeBad, "Resources are missing")
	}
	if res := checkTree(m.RestApiId, t); res != nil {
		return res
	}
	if t.Resources[rules.RootResourceID(m.RestApiId)] == nil {
		return fail(codeBad, "The root resource is missing")
	}
	if c.Resources == nil {
		c.Resources = map[string]*pb.ResourceTree{}
	}
	t.Revision = a.index
	c.Resources[m.RestApiId] = t
	return &pb.Result{Id: m.RestApiId}
}

// snapshotResources records the API's working tree as deployment depID's,
// when it has any method. Every method must have an integration, as the
// original requires.
func snapshotResources(c *pb.Config, apiID, depID string) *pb.Result {
	t := c.Resources[apiID]
	if !rules.TreeHasMethods(t) {
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		for _, m := range slices.Sorted(maps.Keys(t.Resources[id].GetMethods())) {
			if t.Resources[id].Methods[m].GetIntegration() == nil {
				return fail(codeBad, "No integration defined for method")
			}
		}
	}
	if c.DeploymentResources == nil {
		c.DeploymentResources = map[string]*pb.ResourceTree{}
	}
	c.DeploymentResources[stageKey(apiID, depID)] = proto.Clone(t).(*pb.ResourceTree)
	return nil
}

// deleteResources forgets every resource tree of an API.
func deleteResources(c *pb.Config, apiID string) {
	delete(c.Resources, apiID)
	for k := range c.DeploymentResources {
		if api, _, _ := strings.Cut(k, "/"); api == apiID {
			delete(c.DeploymentResources, k)
		}
	}
}

// checkResourceTrees is checkSnapshot's part for resources: every tree
// passes the checks of the commands that write it; a working tree belongs
// to an API that exists.
func checkResourceTrees(c *pb.Config, bad func(what, key string, r *pb.Result)) {
	for _, k := range slices.Sorted(maps.Keys(c.Resources)) {
		if c.RestApis[k] == nil {
			bad("resources", k, fail(codeBad, "of an API that does not exist"))
			continue
		}
		bad("resources", k, checkTree(k, c.Resources[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(c.DeploymentResources)) {
		// A tree whose deployment is gone is never served: not refused.
		api, _, _ := strings.Cut(k, "/")
		bad("deployment resources", k, checkTree(api, c.DeploymentResources[k]))
	}
}
