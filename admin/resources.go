package admin

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// Resources, methods and integrations: the REST API model of the
// original (GetResources, CreateResource, PutMethod, PutIntegration ...).
// Every change is a PutResource command carrying the whole resource,
// guarded by the revision of the API's tree it was read at.

const (
	msgResourceNotFound    = "Invalid Resource identifier specified"
	msgMethodNotFound      = "Invalid Method identifier specified"
	msgIntegrationNotFound = "No integration defined for method"
	resourceIDLen          = 10
)

func newResourceID() string { return randomString(resourceIDLen, lowerAlnum) }

type integrationView struct {
	Type                string            `json:"type"`
	HTTPMethod          string            `json:"httpMethod,omitempty"`
	URI                 string            `json:"uri,omitempty"`
	ConnectionType      string            `json:"connectionType,omitempty"`
	RequestParameters   map[string]string `json:"requestParameters,omitempty"`
	RequestTemplates    map[string]string `json:"requestTemplates,omitempty"`
	PassthroughBehavior string            `json:"passthroughBehavior,omitempty"`
	TimeoutInMillis     int32             `json:"timeoutInMillis"`
	CacheNamespace      string            `json:"cacheNamespace,omitempty"`
	CacheKeyParameters  []string          `json:"cacheKeyParameters"`
}

type methodView struct {
	HTTPMethod        string           `json:"httpMethod"`
	AuthorizationType string           `json:"authorizationType"`
	APIKeyRequired    bool             `json:"apiKeyRequired"`
	OperationName     string           `json:"operationName,omitempty"`
	RequestParameters map[string]bool  `json:"requestParameters,omitempty"`
	MethodIntegration *integrationView `json:"methodIntegration,omitempty"`
}

type resourceView struct {
	ID              string                `json:"id"`
	ParentID        string                `json:"parentId,omitempty"`
	PathPart        string                `json:"pathPart,omitempty"`
	Path            string                `json:"path"`
	ResourceMethods map[string]methodView `json:"resourceMethods,omitempty"`
}

func integrationViewOf(in *pb.Integration) *integrationView {
	if in == nil {
		return nil
	}
	return &integrationView{
		Type: in.GetType(), HTTPMethod: in.GetHttpMethod(), URI: in.GetUri(), ConnectionType: in.GetConnectionType(),
		RequestParameters: in.GetRequestParameters(), RequestTemplates: in.GetRequestTemplates(),
		PassthroughBehavior: in.GetPassthroughBehavior(), TimeoutInMillis: in.GetTimeoutInMillis(),
		CacheNamespace: in.GetCacheNamespace(), CacheKeyParameters: append([]string{}, in.GetCacheKeyParameters()...),
	}
}

func methodViewOf(m *pb.Method) methodView {
	return methodView{
		HTTPMethod: m.GetHttpMethod(), AuthorizationType: m.GetAuthorizationType(), APIKeyRequired: m.GetApiKeyRequired(),
		OperationName: m.GetOperationName(), RequestParameters: m.GetRequestParameters(),
		MethodIntegration: integrationViewOf(m.GetIntegration()),
	}
}

func resourceViewOf(r *pb.Resource, path string) resourceView {
	v := resourceView{ID: r.GetId(), ParentID: r.GetParentId(), PathPart: r.GetPathPart(), Path: path}
	if len(r.GetMethods()) > 0 {
		v.ResourceMethods = make(map[string]methodView, len(r.GetMethods()))
		for k, m := range r.GetMethods() {
			v.ResourceMethods[k] = methodViewOf(m)
		}
	}
	return v
}

// treeOf returns the working tree of an API (its root alone when it has
// none yet), or nil when there is no such API.
func treeOf(c *pb.Config, apiID string) *pb.ResourceTree {
	if c.GetRestApis()[apiID] == nil {
		return nil
	}
	if t := c.GetResources()[apiID]; t != nil {
		return t
	}
	root := rules.RootResourceID(apiID)
	return &pb.ResourceTree{Resources: map[string]*pb.Resource{root: {Id: root}}}
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) *apiError {
	pr, e := parsePage(r.URL.Query())
	if e != nil {
		return e
	}
	t := treeOf(s.store.Config(), r.PathValue("restapi_id"))
	if t == nil {
		return notFound(msgAPINotFound)
	}
	paths := rules.ResourcePaths(t)
	res := slices.Collect(maps.Values(t.GetResources()))
	page, next := paginate(res, func(x *pb.Resource) cursor { return cursor{0, paths[x.GetId()] + "\x00" + x.GetId()} }, pr)
	out := listView[resourceView]{Item: make([]resourceView, 0, len(page)), Position: next}
	for _, x := range page {
		out.Item = append(out.Item, resourceViewOf(x, paths[x.GetId()]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getResource(w http.ResponseWriter, r *http.Request) *apiError {
	t := treeOf(s.store.Config(), r.PathValue("restapi_id"))
	if t == nil {
		return notFound(msgAPINotFound)
	}
	x := t.GetResources()[r.PathValue("resource_id")]
	if x == nil {
		return notFound(msgResourceNotFound)
	}
	writeJSON(w, http.StatusOK, resourceViewOf(x, rules.ResourcePaths(t)[x.GetId()]))
	return nil
}

type createResourceRequest struct {
	PathPart string `json:"pathPart"`
}

func (s *Server) createResource(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, parent := r.PathValue("restapi_id"), r.PathValue("parent_id")
	var req createResourceRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	cfg := s.store.Config()
	t := treeOf(cfg, apiID)
	if t == nil {
		return notFound(msgAPINotFound)
	}
	if t.GetResources()[parent] == nil {
		return notFound(msgResourceNotFound)
	}
	if err := rules.PathPart(req.PathPart); err != nil {
		return badRequest("%s", err.Error())
	}
	x := &pb.Resource{
		Id:       freshID(newResourceID, func(id string) bool { return t.GetResources()[id] != nil }),
		ParentId: parent, PathPart: req.PathPart,
	}
	if err := rules.Sibling(t, x); err != nil {
		return resourceConflict(err)
	}
	next := proto.Clone(t).(*pb.ResourceTree)
	next.Resources[x.Id] = x
	if err := rules.Tree(apiID, next); err != nil {
		return resourceConflict(err)
	}
	cmd := &pb.Command{Body: &pb.Command_PutResource{PutResource: &pb.PutResource{RestApiId: apiID, Resource: x, Create: true}}}
	if _, e := s.apply(r.Context(), cmd); e != nil {
		return e
	}
	t = treeOf(s.store.Config(), apiID)
	if cur := t.GetResources()[x.Id]; cur != nil {
		x = cur
	}
	writeJSON(w, http.StatusCreated, resourceViewOf(x, rules.ResourcePaths(t)[x.Id]))
	return nil
}

// resourceConflict answers a tree the rules refuse: 409 for a sibling
// with the same path part (as the original), 400 otherwise.
func resourceConflict(err error) *apiError {
	msg := err.Error()
	if strings.HasPrefix(msg, "Another resource with the same parent") {
		return conflict(msg)
	}
	return badRequest("%s", msg)
}

// changeResource reads a resource of an API, lets change edit a copy and
// applies it, starting over when the tree changed in between.
func (s *Server) changeResource(ctx context.Context, apiID, resID string, change func(*pb.Resource) *apiError) (*pb.Resource, *apiError) {
	return update(s, ctx,
		func(c *pb.Config) (*pb.Resource, uint64, *apiError) {
			t := treeOf(c, apiID)
			if t == nil {
				return nil, 0, notFound(msgAPINotFound)
			}
			x := t.GetResources()[resID]
			if x == nil {
				return nil, 0, notFound(msgResourceNotFound)
			}
			return x, t.GetRevision(), nil
		},
		func(x *pb.Resource, c *pb.Config) *apiError {
			if e := change(x); e != nil {
				return e
			}
			if err := rules.Sibling(treeOf(c, apiID), x); err != nil {
				return resourceConflict(err)
			}
			next := proto.Clone(treeOf(c, apiID)).(*pb.ResourceTree)
			next.Resources[x.Id] = x
			if err := rules.Tree(apiID, next); err != nil {
				return resourceConflict(err)
			}
			return nil
		},
		func(x *pb.Resource, rev uint64) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutResource{PutResource: &pb.PutResource{RestApiId: apiID, Resource: x, IfRevision: rev}}}
		})
}

// resourcePatch is UpdateResource's patch table. A refusal lists every
// path, whatever the op.
var resourcePatch = listedForEveryOp(patchTable[*pb.Resource]{
	{path: "/pathPart", ops: opReplace, set: func(x *pb.Resource, _ []string, op patchOp) *apiError {
		x.PathPart = op.Value
		return nil
	}},
	{path: "/parentId", ops: opReplace, set: func(x *pb.Resource, _ []string, op patchOp) *apiError {
		x.ParentId = op.Value
		return nil
	}},
})

// patchResource applies UpdateResource's operations; the root resource
// takes none. The rules check the tree that results.
func patchResource(x *pb.Resource, ops []patchOp) *apiError {
	if x.GetParentId() == "" && len(ops) > 0 {
		return badRequest("The root resource cannot be changed")
	}
	return applyPatch(resourcePatch, x, ops)
}

func (s *Server) updateResource(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, resID := r.PathValue("restapi_id"), r.PathValue("resource_id")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	x, e := s.changeResource(r.Context(), apiID, resID, func(x *pb.Resource) *apiError {
		return patchResource(x, ops)
	})
	if e != nil {
		return e
	}
	t := treeOf(s.store.Config(), apiID)
	writeJSON(w, http.StatusOK, resourceViewOf(x, rules.ResourcePaths(t)[x.GetId()]))
	return nil
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request) *apiError {
	cmd := &pb.Command{Body: &pb.Command_DeleteResource{DeleteResource: &pb.DeleteResource{
		RestApiId: r.PathValue("restapi_id"), Id: r.PathValue("resource_id")}}}
	if _, e := s.apply(r.Context(), cmd); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

// resourceRoutes registers the routes of resources, methods,
// integrations, OpenAPI import (PutRestApi) and export.
func (s *Server) resourceRoutes() {
	const res = "/restapis/{restapi_id}/resources/{resource_id}"
	s.handle("GET /restapis/{restapi_id}/resources", s.listResources)
	s.handle("GET "+res, s.getResource)
	s.handle("POST /restapis/{restapi_id}/resources/{parent_id}", s.createResource)
	s.handle("PATCH "+res, s.updateResource)
	s.handle("DELETE "+res, s.deleteResource)
	s.handle("PUT "+res+"/methods/{http_method}", s.putMethod)
	s.handle("GET "+res+"/methods/{http_method}", s.getMethod)
	s.handle("PATCH "+res+"/methods/{http_method}", s.updateMethod)
	s.handle("DELETE "+res+"/methods/{http_method}", s.deleteMethod)
	s.handle("PUT "+res+"/methods/{http_method}/integration", s.putIntegration)
	s.handle("GET "+res+"/methods/{http_method}/integration", s.getIntegration)
	s.handle("PATCH "+res+"/methods/{http_method}/integration", s.updateIntegration)
	s.handle("DELETE "+res+"/methods/{http_method}/integration", s.deleteIntegration)
	s.handle("PUT /restapis/{restapi_id}", s.putRestAPI)
	s.handle("GET /restapis/{restapi_id}/stages/{stage_name}/exports/{export_type}", s.getExport)
}
