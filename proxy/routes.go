package proxy

import (
	"maps"
	"net/url"
	"slices"
	"strings"

	tollgatepb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// maxRouteParams bounds the path parameters a route captures; a deeper
// one's integration cannot name them (it answers 500, logged).
const maxRouteParams = 16

// routeNode is one resource of a deployment, as the request path reads it:
// built when the configuration changes, never changed after.
type routeNode struct {
	static  map[string]*routeNode // child by path part, compared as sent
	param   *routeNode            // the child "{name}"
	greedy  *routeNode            // the child "{name+}"
	methods map[string]*route     // by HTTP method
	anyM    *route                // the method ANY
}

// route is a method of a resource and its integration, resolved for one
// stage (stage variables substituted).
type route struct {
	keyRequired bool
	resPath     string // "/pets/{id}": the method key is resPath/verb
	verb        string // the method's name: GET ... or ANY

	// The upstream: target is nil when the integration's uri does not make
	// an absolute http(s) URL the upstream policy allows (targetErr says why).
	target    *url.URL
	targetErr string
	path      []tplPart // the uri's escaped path, parameters filled per request
	method    string    // the integration's method; "" for ANY (the request's)
}

// tplPart is a literal piece of a uri's path, or (lit == "") the path
// parameter captured at index param.
type tplPart struct {
	lit   string
	param int
}

// span is a captured path parameter: [start, end) of the escaped rest.
type span struct{ start, end int32 }

// find returns the route of a request: rest is the escaped path within the
// stage ("" or starting with "/"). Precedence, as the original's: a path
// part that matches exactly, then a path parameter, then a greedy
// parameter; on a resource, the request's method, then ANY. When the more
// specific resource has neither, the next one is tried. Captured
// parameters go to params in order from the root. Each resource is
// visited at most once per request, and nothing is allocated.
func (n *routeNode) find(full string, off int, verb string, params *[maxRouteParams]span, nvars int) *route {
	seg, after := cutSegment(full[off:])
	if seg == "" && after == "" {
		return n.method(verb)
	}
	segStart := off + 1
	next := segStart + len(seg)
	if c := n.static[seg]; c != nil {
		if r := c.find(full, next, verb, params, nvars); r != nil {
			return r
		}
	}
	if nvars >= maxRouteParams {
		return nil
	}
	if n.param != nil && seg != "" {
		params[nvars] = span{int32(segStart), int32(next)}
		if r := n.param.find(full, next, verb, params, nvars+1); r != nil {
			return r
		}
	}
	if n.greedy != nil && seg != "" {
		params[nvars] = span{int32(segStart), int32(len(full))}
		return n.greedy.method(verb)
	}
	return nil
}

func (n *routeNode) method(verb string) *route {
	if r := n.methods[verb]; r != nil {
		return r
	}
	return n.anyM
}

// buildRoutes makes the routing tree of a deployment's resources for one
// stage, or nil when the deployment has no method (the stage forwards
// every path to its variable url, as before resources).
func (p *Proxy) buildRoutes(tree *tollgatepb.ResourceTree, st *tollgatepb.Stage) *routeNode {
	if !rules.TreeHasMethods(tree) {
		return nil
	}
	res := tree.GetResources()
	paths := rules.ResourcePaths(tree)
	nodes := make(map[string]*routeNode, len(res))
	ids := slices.Sorted(maps.Keys(res))
	for _, id := range ids {
		nodes[id] = &routeNode{}
	}
	var root *routeNode
	for _, id := range ids {
		r, n := res[id], nodes[id]
		parent := nodes[r.GetParentId()]
		switch _, greedy, variable := rules.IsVariablePart(r.GetPathPart()); {
		case parent == nil:
			root = n
		case greedy:
			parent.greedy = n
		case variable:
			parent.param = n
		default:
			if parent.static == nil {
				parent.static = make(map[string]*routeNode)
			}
			parent.static[r.GetPathPart()] = n
		}
		vars := pathVariables(paths[id])
		for verb, m := range r.GetMethods() {
			rt := p.buildRoute(m, paths[id], vars, st)
			if rt.target == nil {
				p.log.Warn("method has no valid integration", "api", st.GetRestApiId(), "stage", st.GetStageName(),
					"resource", paths[id], "method", verb, "problem", rt.targetErr)
			}
			if verb == "ANY" {
				n.anyM = rt
				continue
			}
			if n.methods == nil {
				n.methods = make(map[string]*route)
			}
			n.methods[verb] = rt
		}
	}
	return root
}

// pathVariables lists the path parameters of a resource path, from the
// root: "/pets/{id}/{proxy+}" → id, proxy.
func pathVariables(path string) []string {
	var out []string
	for part := range strings.SplitSeq(path, "/") {
		if name, _, ok := rules.IsVariablePart(part); ok {
			out = append(out, name)
		}
	}
	return out
}

func (p *Proxy) buildRoute(m *tollgatepb.Method, resPath string, vars []string, st *tollgatepb.Stage) *route {
	rt := &route{keyRequired: m.GetApiKeyRequired(), resPath: resPath, verb: m.GetHttpMethod()}
	in := m.GetIntegration()
	if in == nil {
		rt.targetErr = "method has no integration"
		return rt
	}
	if in.GetHttpMethod() != "ANY" {
		rt.method = in.GetHttpMethod()
	}
	uri := expandStageVariables(in.GetUri(), st.GetVariables())
	rest, ok := strings.CutPrefix(uri, "http://")
	scheme := "http"
	if !ok {
		if rest, ok = strings.CutPrefix(uri, "https://"); !ok {
			rt.targetErr = "integration uri is not http or https: " + rules.Truncate(uri)
			return rt
		}
		scheme = "https"
	}
	host, pathAndQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		host, pathAndQuery = rest[:i], rest[i:]
	}
	pathTpl, query, _ := strings.Cut(pathAndQuery, "?")
	u, err := url.Parse(scheme + "://" + host)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(host, "{}") {
		rt.targetErr = "integration uri has no valid host: " + rules.Truncate(uri)
		return rt
	}
	if err := p.upstreams.checkURL(u); err != nil {
		rt.targetErr = "integration uri: " + err.Error()
		return rt
	}
	u.RawQuery = query
	parts, problem := pathTemplate(pathTpl, vars, in.GetRequestParameters())
	if problem != "" {
		rt.targetErr = problem
		return rt
	}
	rt.target, rt.path = u, parts
	return rt
}

// expandStageVariables replaces each ${stageVariables.name} of s with the
// stage's variable (empty when unset).
func expandStageVariables(s string, vars map[string]string) string {
	const open = "${stageVariables."
	var b strings.Builder
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(vars[s[i+len(open):i+end]])
		s = s[i+end+1:]
	}
}

// pathTemplate splits a uri's path into literals and path parameters. A
// parameter {x} takes the method parameter that requestParameters maps
// integration.request.path.x from (method.request.path.y), else the
// method's own path parameter x.
func pathTemplate(tpl string, vars []string, params map[string]string) ([]tplPart, string) {
	var out []tplPart
	for tpl != "" {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			out = append(out, tplPart{lit: tpl})
			break
		}
		if i > 0 {
			out = append(out, tplPart{lit: tpl[:i]})
		}
		end := strings.IndexByte(tpl[i:], '}')
		if end < 0 {
			return nil, "integration uri has an unclosed {"
		}
		name := strings.TrimSuffix(tpl[i+1:i+end], "+")
		if from, ok := strings.CutPrefix(params["integration.request.path."+name], "method.request.path."); ok {
			name = from
		}
		idx := slices.Index(vars, name)
		if idx < 0 || idx >= maxRouteParams {
			return nil, "integration uri names path parameter {" + rules.Truncate(name) + "}, which the resource path does not capture"
		}
		out = append(out, tplPart{param: idx})
		tpl = tpl[i+end+1:]
	}
	return out, ""
}

// upstreamPath is the escaped path a routed request goes to.
func (rt *route) upstreamPath(rest string, params *[maxRouteParams]span) string {
	var b strings.Builder
	for _, part := range rt.path {
		if part.lit != "" {
			b.WriteString(part.lit)
			continue
		}
		sp := params[part.param]
		b.WriteString(rest[sp.start:sp.end])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
