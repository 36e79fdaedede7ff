package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// putMethodRequest is PutMethod's body. Authorizers, request models and
// validators are accepted when empty and refused otherwise: nothing here
// would enforce them.
type putMethodRequest struct {
	AuthorizationType   string            `json:"authorizationType"`
	AuthorizerID        string            `json:"authorizerId"`
	APIKeyRequired      bool              `json:"apiKeyRequired"`
	OperationName       string            `json:"operationName"`
	RequestParameters   map[string]bool   `json:"requestParameters"`
	RequestModels       map[string]string `json:"requestModels"`
	RequestValidatorID  string            `json:"requestValidatorId"`
	AuthorizationScopes []string          `json:"authorizationScopes"`
}

// methodOf returns the method m of resource x, or the error naming it.
func methodOf(x *pb.Resource, m string) (*pb.Method, *apiError) {
	meth := x.GetMethods()[m]
	if meth == nil {
		return nil, notFound(msgMethodNotFound)
	}
	return meth, nil
}

func (s *Server) putMethod(w http.ResponseWriter, r *http.Request) *apiError {
	apiID, resID, verb := r.PathValue("restapi_id"), r.PathValue("resource_id"), r.PathValue("http_method")
	var req putMethodRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if req.AuthorizerID != "" || len(req.RequestModels) > 0 || req.RequestValidatorID != "" || len(req.AuthorizationScopes) > 0 {
		return badRequest("Authorizers, request models and request validators are not supported")
	}
	m := &pb.Method{HttpMethod: verb, AuthorizationType: req.AuthorizationType, ApiKeyRequired: req.APIKeyRequired,
		OperationName: req.OperationName, RequestParameters: req.RequestParameters}
	if err := rules.Method(m); err != nil {
		return badRequest("%s", err.Error())
	}
	x, e := s.changeResource(r.Context(), apiID, resID, func(x *pb.Resource) *apiError {
		if x.GetMethods()[verb] != nil {
			return conflict("Method already exists for this resource")
		}
		if x.Methods == nil {
			x.Methods = map[string]*pb.Method{}
		}
		x.Methods[verb] = m
		return nil
	})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, methodViewOf(x.GetMethods()[verb]))
	return nil
}

func (s *Server) getMethod(w http.ResponseWriter, r *http.Request) *apiError {
	t := treeOf(s.store.Config(), r.PathValue("restapi_id"))
	if t == nil {
		return notFound(msgAPINotFound)
	}
	x := t.GetResources()[r.PathValue("resource_id")]
	if x == nil {
		return notFound(msgResourceNotFound)
	}
	m, e := methodOf(x, r.PathValue("http_method"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, methodViewOf(m))
	return nil
}

func (s *Server) deleteMethod(w http.ResponseWriter, r *http.Request) *apiError {
	return s.deleteInMethod(w, r, methodOf, func(x *pb.Resource, verb string, _ *pb.Method) { delete(x.Methods, verb) })
}

// deleteInMethod is DeleteMethod and DeleteIntegration: it finds the
// request path's method with find (a 404 when it, or what of it is to go,
// is missing), removes with drop and answers 202.
func (s *Server) deleteInMethod(w http.ResponseWriter, r *http.Request,
	find func(*pb.Resource, string) (*pb.Method, *apiError),
	drop func(x *pb.Resource, verb string, m *pb.Method),
) *apiError {
	verb := r.PathValue("http_method")
	_, e := s.changeResource(r.Context(), r.PathValue("restapi_id"), r.PathValue("resource_id"), func(x *pb.Resource) *apiError {
		m, e := find(x, verb)
		if e != nil {
			return e
		}
		drop(x, verb, m)
		return nil
	})
	if e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

// methodPatch is UpdateMethod's patch table. A refusal lists every path,
// whatever the op.
var methodPatch = listedForEveryOp(patchTable[*pb.Method]{
	{path: "/authorizationType", ops: opReplace, set: func(m *pb.Method, _ []string, op patchOp) *apiError {
		m.AuthorizationType = op.Value
		return nil
	}},
	{path: "/apiKeyRequired", ops: opReplace, set: func(m *pb.Method, _ []string, op patchOp) *apiError {
		v, e := patchStrictBool(op)
		if e != nil {
			return e
		}
		m.ApiKeyRequired = v
		return nil
	}},
	{path: "/operationName", ops: opReplace, set: func(m *pb.Method, _ []string, op patchOp) *apiError {
		m.OperationName = op.Value
		return nil
	}},
	{path: "/requestParameters/{name}", match: "/requestParameters/**", ops: opAdd | opReplace | opRemove,
		set: func(m *pb.Method, args []string, op patchOp) *apiError {
			if m.RequestParameters == nil {
				m.RequestParameters = map[string]bool{}
			}
			m.RequestParameters[args[0]] = patchBool(op)
			return nil
		},
		remove: func(m *pb.Method, args []string, _ patchOp) *apiError {
			delete(m.RequestParameters, args[0])
			return nil
		}},
})

// patchMethod applies UpdateMethod's operations.
func patchMethod(m *pb.Method, ops []patchOp) *apiError {
	if e := applyPatch(methodPatch, m, ops); e != nil {
		return e
	}
	return invalid(rules.Method(m))
}

func (s *Server) updateMethod(w http.ResponseWriter, r *http.Request) *apiError {
	return s.updateInMethod(w, r, methodOf, patchMethod, func(m *pb.Method) any { return methodViewOf(m) })
}

// updateInMethod is UpdateMethod and UpdateIntegration: it reads the
// patch, finds the request path's method with find (a 404 when the
// method, or what of it the patch changes, is missing), applies the
// patch to it with patch and answers view of the method as stored.
func (s *Server) updateInMethod(w http.ResponseWriter, r *http.Request,
	find func(*pb.Resource, string) (*pb.Method, *apiError),
	patch func(*pb.Method, []patchOp) *apiError,
	view func(*pb.Method) any,
) *apiError {
	verb := r.PathValue("http_method")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	x, e := s.changeResource(r.Context(), r.PathValue("restapi_id"), r.PathValue("resource_id"), func(x *pb.Resource) *apiError {
		m, e := find(x, verb)
		if e != nil {
			return e
		}
		return patch(m, ops)
	})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, view(x.GetMethods()[verb]))
	return nil
}

// putIntegrationRequest is PutIntegration's body. Content handling and
// TLS settings are accepted and ignored; credentials and VPC links are
// refused.
type putIntegrationRequest struct {
	Type                string            `json:"type"`
	HTTPMethod          string            `json:"httpMethod"`
	URI                 string            `json:"uri"`
	ConnectionType      string            `json:"connectionType"`
	ConnectionID        string            `json:"connectionId"`
	Credentials         string            `json:"credentials"`
	RequestParameters   map[string]string `json:"requestParameters"`
	RequestTemplates    map[string]string `json:"requestTemplates"`
	PassthroughBehavior string            `json:"passthroughBehavior"`
	CacheNamespace      string            `json:"cacheNamespace"`
	CacheKeyParameters  []string          `json:"cacheKeyParameters"`
	ContentHandling     string            `json:"contentHandling"`
	TimeoutInMillis     int32             `json:"timeoutInMillis"`
	TLSConfig           json.RawMessage   `json:"tlsConfig"`
}

// integrationDefaults fills what the original fills when it is not given.
func integrationDefaults(in *pb.Integration, resID string) {
	if in.PassthroughBehavior == "" {
		in.PassthroughBehavior = "WHEN_NO_MATCH"
	}
	if in.TimeoutInMillis == 0 {
		in.TimeoutInMillis = 29000
	}
	if in.ConnectionType == "" {
		in.ConnectionType = "INTERNET"
	}
	if in.CacheNamespace == "" {
		in.CacheNamespace = resID
	}
}

func (s *Server) putIntegration(w http.ResponseWriter, r *http.Request) *apiError {
	resID, verb := r.PathValue("resource_id"), r.PathValue("http_method")
	var req putIntegrationRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if req.ConnectionID != "" || req.Credentials != "" {
		return badRequest("Integration credentials and VPC links are not supported")
	}
	in := &pb.Integration{Type: req.Type, HttpMethod: req.HTTPMethod, Uri: req.URI, ConnectionType: req.ConnectionType,
		RequestParameters: req.RequestParameters, RequestTemplates: req.RequestTemplates,
		PassthroughBehavior: req.PassthroughBehavior, CacheNamespace: req.CacheNamespace,
		CacheKeyParameters: req.CacheKeyParameters, TimeoutInMillis: req.TimeoutInMillis}
	integrationDefaults(in, resID)
	if err := rules.Integration(in); err != nil {
		return badRequest("%s", err.Error())
	}
	x, e := s.changeResource(r.Context(), r.PathValue("restapi_id"), resID, func(x *pb.Resource) *apiError {
		m, e := methodOf(x, verb)
		if e != nil {
			return e
		}
		m.Integration = in
		return nil
	})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, integrationViewOf(x.GetMethods()[verb].GetIntegration()))
	return nil
}

// integrationOf returns the integration of method verb of resource x.
func integrationOf(x *pb.Resource, verb string) (*pb.Method, *apiError) {
	m, e := methodOf(x, verb)
	if e != nil {
		return nil, e
	}
	if m.GetIntegration() == nil {
		return nil, notFound(msgIntegrationNotFound)
	}
	return m, nil
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) *apiError {
	t := treeOf(s.store.Config(), r.PathValue("restapi_id"))
	if t == nil {
		return notFound(msgAPINotFound)
	}
	x := t.GetResources()[r.PathValue("resource_id")]
	if x == nil {
		return notFound(msgResourceNotFound)
	}
	m, e := integrationOf(x, r.PathValue("http_method"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, integrationViewOf(m.GetIntegration()))
	return nil
}

func (s *Server) deleteIntegration(w http.ResponseWriter, r *http.Request) *apiError {
	return s.deleteInMethod(w, r, integrationOf, func(_ *pb.Resource, _ string, m *pb.Method) { m.Integration = nil })
}

// integrationPatch is UpdateIntegration's patch table. A refusal lists
// every path, whatever the op.
var integrationPatch = listedForEveryOp(patchTable[*pb.Integration]{
	{path: "/type", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.Type = op.Value
		return nil
	}},
	{path: "/httpMethod", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.HttpMethod = op.Value
		return nil
	}},
	{path: "/uri", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.Uri = op.Value
		return nil
	}},
	{path: "/passthroughBehavior", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.PassthroughBehavior = op.Value
		return nil
	}},
	{path: "/timeoutInMillis", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		// The range is the rules' to check, after every operation.
		n, err := strconv.ParseInt(op.Value, 10, 32)
		if err != nil {
			return badRequest("Invalid value %q for /timeoutInMillis: want an integer from 50 to 29000", truncate(op.Value))
		}
		in.TimeoutInMillis = int32(n)
		return nil
	}},
	{path: "/connectionType", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.ConnectionType = op.Value
		return nil
	}},
	{path: "/cacheNamespace", ops: opReplace, set: func(in *pb.Integration, _ []string, op patchOp) *apiError {
		in.CacheNamespace = op.Value
		return nil
	}},
	{path: "/requestParameters/{name}", match: "/requestParameters/**", ops: opAdd | opReplace | opRemove,
		set: func(in *pb.Integration, args []string, op patchOp) *apiError {
			if in.RequestParameters == nil {
				in.RequestParameters = map[string]string{}
			}
			in.RequestParameters[args[0]] = op.Value
			return nil
		},
		remove: func(in *pb.Integration, args []string, _ patchOp) *apiError {
			delete(in.RequestParameters, args[0])
			return nil
		}},
})

// patchIntegration applies UpdateIntegration's operations.
func patchIntegration(in *pb.Integration, ops []patchOp) *apiError {
	if e := applyPatch(integrationPatch, in, ops); e != nil {
		return e
	}
	return invalid(rules.Integration(in))
}

func (s *Server) updateIntegration(w http.ResponseWriter, r *http.Request) *apiError {
	return s.updateInMethod(w, r, integrationOf,
		func(m *pb.Method, ops []patchOp) *apiError { return patchIntegration(m.Integration, ops) },
		func(m *pb.Method) any { return integrationViewOf(m.GetIntegration()) })
}
