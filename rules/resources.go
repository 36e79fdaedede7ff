package rules

import (
	"crypto/sha256"
	"maps"
	"slices"
	"strings"

	pb "github.com/tollgate/tollgate/proto"
)

// Limits on an API's resources.
const (
	MaxResources     = 300 // resources per API, as the original's default
	MaxPathPartLen   = 128
	MaxResourceDepth = 64
	MaxURILen        = 2048
	MaxParameters    = 100 // request parameters of a method or an integration
	MaxParamNameLen  = 256
	MaxTemplates     = 20 // request templates of an integration
	MaxTemplateLen   = 32 << 10
)

// ResourceMethods are the methods a resource may have.
var ResourceMethods = []string{"ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}

// RootResourceID is the id of an API's root resource "/": derived from the
// API id, so that every API has one without a command creating it.
func RootResourceID(apiID string) string {
	sum := sha256.Sum256([]byte("root resource\x00" + apiID))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(b)
}

// IsVariablePart tells whether a path part is a path parameter, "{id}" or
// greedy "{proxy+}", and returns its name and greediness.
func IsVariablePart(p string) (name string, greedy, ok bool) {
	if len(p) < 3 || p[0] != '{' || p[len(p)-1] != '}' {
		return "", false, false
	}
	name = p[1 : len(p)-1]
	if strings.HasSuffix(name, "+") {
		name, greedy = name[:len(name)-1], true
	}
	return name, greedy, name != ""
}

// PathPart checks a resource's path part: a-zA-Z0-9._- and, for a path
// parameter, curly braces at the beginning and the end and an optional
// plus sign before the closing brace.
func PathPart(p string) error {
	bad := Errorf("Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace.")
	if p == "" || len(p) > MaxPathPartLen {
		return bad
	}
	inner := p
	if name, _, ok := IsVariablePart(p); ok {
		inner = name
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad
		}
	}
	return nil
}

// HTTPMethod checks a resource method's name.
func HTTPMethod(m string) error {
	if !slices.Contains(ResourceMethods, m) {
		return Errorf("Invalid HttpMethod specified. Valid options are %s", strings.Join(ResourceMethods, ","))
	}
	return nil
}

// Method checks a method and its integration.
func Method(m *pb.Method) error {
	if err := HTTPMethod(m.GetHttpMethod()); err != nil {
		return err
	}
	switch m.GetAuthorizationType() {
	case "NONE":
	case "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS":
		return Errorf("authorizationType %s is not supported: use NONE (with apiKeyRequired for API keys)", m.GetAuthorizationType())
	default:
		return Errorf("Invalid authorization type specified. Valid options are NONE")
	}
	if err := Name("operation", m.GetOperationName()); err != nil {
		return err
	}
	if len(m.GetRequestParameters()) > MaxParameters {
		return Errorf("Too many request parameters: at most %d", MaxParameters)
	}
	for _, k := range slices.Sorted(maps.Keys(m.GetRequestParameters())) {
		if !isParamRef(k, "method.request.") {
			return Errorf("Invalid mapping expression specified: %s", Truncate(k))
		}
	}
	if i := m.GetIntegration(); i != nil {
		return Integration(i)
	}
	return nil
}

// isParamRef tells whether s is prefix + (path|querystring|header) + "." +
// a name.
func isParamRef(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	loc, name, ok := strings.Cut(rest, ".")
	return ok && (loc == "path" || loc == "querystring" || loc == "header") && isParamName(name)
}

func isParamName(n string) bool {
	if n == "" || len(n) > MaxParamNameLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// IntegrationTypes are the integration types served.
var IntegrationTypes = []string{"HTTP", "HTTP_PROXY"}

// Integration checks an integration: type, method, uri template, request
// parameters and the optional settings.
func Integration(in *pb.Integration) error {
	if !slices.Contains(IntegrationTypes, in.GetType()) {
		return Errorf("Invalid integration type %s: Tollgate serves %s", Truncate(in.GetType()), strings.Join(IntegrationTypes, ", "))
	}
	if err := HTTPMethod(in.GetHttpMethod()); err != nil {
		return Errorf("Enumeration value for HttpMethod must be non-empty and one of %s", strings.Join(ResourceMethods, ","))
	}
	if err := URITemplate(in.GetUri()); err != nil {
		return err
	}
	if len(in.GetRequestParameters()) > MaxParameters {
		return Errorf("Too many request parameters: at most %d", MaxParameters)
	}
	for _, k := range slices.Sorted(maps.Keys(in.GetRequestParameters())) {
		v := in.GetRequestParameters()[k]
		if !isParamRef(k, "integration.request.") {
			return Errorf("Invalid mapping expression specified: %s", Truncate(k))
		}
		static := len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\''
		if !static && !isParamRef(v, "method.request.") {
			return Errorf("Invalid mapping expression specified: Validation Result: warnings : [], errors : [Invalid mapping expression specified: %s]", Truncate(v))
		}
		if len(v) > MaxVarValueLen || !validText(v) {
			return Errorf("Invalid mapping expression specified: %s", Truncate(v))
		}
	}
	switch in.GetPassthroughBehavior() {
	case "", "WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER":
	default:
		return Errorf("Invalid passthrough behavior specified: %s", Truncate(in.GetPassthroughBehavior()))
	}
	if t := in.GetTimeoutInMillis(); t != 0 && (t < 50 || t > 29000) {
		return Errorf("Timeout should be between 50 ms and 29000 ms")
	}
	switch in.GetConnectionType() {
	case "", "INTERNET":
	default:
		return Errorf("Invalid connection type %s: only INTERNET is served", Truncate(in.GetConnectionType()))
	}
	if len(in.GetCacheKeyParameters()) > MaxParameters || len(in.GetCacheNamespace()) > MaxNameLen || !validText(in.GetCacheNamespace()) {
		return Errorf("Invalid cache settings")
	}
	for _, p := range in.GetCacheKeyParameters() {
		if !isParamRef(p, "method.request.") {
			return Errorf("Invalid cache key parameter %s", Truncate(p))
		}
	}
	if len(in.GetRequestTemplates()) > MaxTemplates {
		return Errorf("Too many request templates: at most %d", MaxTemplates)
	}
	for ct, tpl := range in.GetRequestTemplates() {
		if len(ct) > MaxNameLen || len(tpl) > MaxTemplateLen || !validText(ct) || !validText(tpl) {
			return Errorf("Invalid request template")
		}
	}
	return nil
}

func validText(s string) bool {
	for _, r := range s {
		if r == 0 || r == 0xfffd {
			return false
		}
	}
	return true
}

// URITemplate checks an HTTP integration's uri: an absolute http or https
// URL whose host is literal or one stage variable, with
// "${stageVariables.name}" and "{name}" (a path parameter, in the path)
// placeholders.
func URITemplate(uri string) error {
	bad := func(why string) error {
		return Errorf("Invalid HTTP endpoint specified for URI: %s", why)
	}
	if uri == "" {
		return bad("a uri is required")
	}
	if len(uri) > MaxURILen {
		return bad("at most 2048 characters")
	}
	lower := strings.ToLower(uri)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(uri, "${stageVariables.") {
		return bad("it must start with http:// or https:// (or a stage variable)")
	}
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '^' || c == '`' || c == '|' {
			return bad("it has a character a URL may not hold")
		}
		switch {
		case c == '$':
			rest, ok := strings.CutPrefix(uri[i:], "${stageVariables.")
			end := strings.IndexByte(rest, '}')
			if !ok || end <= 0 || end > MaxVarNameLen || !IsAlnum(strings.ReplaceAll(rest[:end], "_", "")) {
				return bad("a \"$\" must start ${stageVariables.name}")
			}
			i += len("${stageVariables.") + end
		case c == '{':
			end := strings.IndexByte(uri[i:], '}')
			if end < 0 || !isParamName(strings.TrimSuffix(uri[i+1:i+end], "+")) {
				return bad("a \"{\" must start a path parameter {name}")
			}
			i += end
		case c == '}':
			return bad("unbalanced \"}\"")
		}
	}
	return nil
}

// Tree checks an API's resource tree: at most MaxResources resources, one
// root (the API's RootResourceID, no parent, no path part), every other
// resource under an existing parent with a valid path part unique among
// its siblings, at most one path parameter among siblings, nothing under a
// greedy "{proxy+}", at most MaxResourceDepth levels, and valid methods
// stored under their names.
func Tree(apiID string, t *pb.ResourceTree) error {
	res := t.GetResources()
	if len(res) > MaxResources {
		return Errorf("Too many resources: an API has at most %d", MaxResources)
	}
	root := RootResourceID(apiID)
	children := map[string][]*pb.Resource{}
	for _, id := range slices.Sorted(maps.Keys(res)) {
		r := res[id]
		if r == nil || r.GetId() != id || !IsID(id) {
			return Errorf("Invalid Resource identifier specified")
		}
		if id == root {
			if r.GetParentId() != "" || r.GetPathPart() != "" {
				return Errorf("The root resource has no parent and no path part")
			}
		} else {
			if err := PathPart(r.GetPathPart()); err != nil {
				return err
			}
			if res[r.GetParentId()] == nil {
				return Errorf("Invalid Resource identifier specified: parent %s of %s not found", Truncate(r.GetParentId()), Truncate(id))
			}
			children[r.GetParentId()] = append(children[r.GetParentId()], r)
		}
		for _, m := range slices.Sorted(maps.Keys(r.GetMethods())) {
			meth := r.GetMethods()[m]
			if meth == nil || meth.GetHttpMethod() != m {
				return Errorf("Invalid Method identifier specified")
			}
			if err := Method(meth); err != nil {
				return err
			}
		}
	}
	if len(res) > 0 && res[root] == nil {
		return Errorf("The root resource %s is missing", root)
	}
	for _, pid := range slices.Sorted(maps.Keys(children)) {
		if _, greedy, _ := IsVariablePart(res[pid].GetPathPart()); greedy {
			return Errorf("A greedy path parameter resource ({proxy+}) cannot have child resources")
		}
		var variable string
		seen := map[string]bool{}
		for _, c := range children[pid] {
			if seen[c.GetPathPart()] {
				return Errorf("Another resource with the same parent already has this name: %s", c.GetPathPart())
			}
			seen[c.GetPathPart()] = true
			if _, _, ok := IsVariablePart(c.GetPathPart()); ok {
				if variable != "" {
					return Errorf("A sibling (%s) of this resource already has a variable path part -- only one is allowed", variable)
				}
				variable = c.GetPathPart()
			}
		}
	}
	// Every resource reaches the root within MaxResourceDepth steps: no
	// cycles.
	for _, id := range slices.Sorted(maps.Keys(res)) {
		cur, n := id, 0
		for cur != root {
			if n++; n > MaxResourceDepth {
				return Errorf("Resource %s is more than %d levels deep, or in a cycle", Truncate(id), MaxResourceDepth)
			}
			cur = res[cur].GetParentId()
		}
	}
	return nil
}

// ResourcePaths returns the path of every resource of a tree that passed
// Tree: "/" for the root, "/pets/{id}" below.
func ResourcePaths(t *pb.ResourceTree) map[string]string {
	res := t.GetResources()
	out := make(map[string]string, len(res))
	var path func(id string, depth int) string
	path = func(id string, depth int) string {
		if p, ok := out[id]; ok {
			return p
		}
		r := res[id]
		if r == nil || r.GetParentId() == "" || depth > MaxResourceDepth {
			out[id] = "/"
			return "/"
		}
		parent := path(r.GetParentId(), depth+1)
		p := strings.TrimSuffix(parent, "/") + "/" + r.GetPathPart()
		out[id] = p
		return p
	}
	for _, id := range slices.Sorted(maps.Keys(res)) {
		path(id, 0)
	}
	return out
}

// TreeHasMethods tells whether any resource of a tree has a method: a
// deployment without one routes as a stage did before resources (every
// path to the stage variable url).
func TreeHasMethods(t *pb.ResourceTree) bool {
	for _, r := range t.GetResources() {
		if len(r.GetMethods()) > 0 {
			return true
		}
	}
	return false
}

// Sibling checks resource r against the other children of its parent in
// t, naming the sibling it conflicts with.
func Sibling(t *pb.ResourceTree, r *pb.Resource) error {
	_, _, variable := IsVariablePart(r.GetPathPart())
	for _, id := range slices.Sorted(maps.Keys(t.GetResources())) {
		o := t.GetResources()[id]
		if id == r.GetId() || o.GetParentId() != r.GetParentId() || r.GetParentId() == "" {
			continue
		}
		if o.GetPathPart() == r.GetPathPart() {
			return Errorf("Another resource with the same parent already has this name: %s", r.GetPathPart())
		}
		if _, _, ov := IsVariablePart(o.GetPathPart()); ov && variable {
			return Errorf("A sibling (%s) of this resource already has a variable path part -- only one is allowed", o.GetPathPart())
		}
	}
	return nil
}
