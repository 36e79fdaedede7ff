package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// Store is what the admin API needs from the cluster.
type Store interface {
	// Config is the current configuration: an immutable value, never mutate it.
	Config() *pb.Config
	// Apply proposes a command through Raft and returns after it applied on
	// this node. err != nil: not applied, or the outcome is unknown.
	// res.Code != ERROR_CODE_NONE: a business failure, res.Message says why.
	Apply(ctx context.Context, cmd *pb.Command) (*pb.Result, error)
	// KeyLedgers returns copies of the quota ledgers of every key in the plan.
	KeyLedgers(planID string) []*pb.KeyLedger
	// Keys returns the keys derived from the cluster's data key (creating
	// it on first use): key values and credential secrets are stored only
	// as their lookup hash and sealed form (package sealing).
	Keys(ctx context.Context) (*sealing.Keys, error)
}

// Config configures a Server.
type Config struct {
	// Store is the cluster state the API reads and changes. Required.
	Store Store
	// Registry receives the admin metrics and is served on GET /metrics.
	// Default: a private registry holding only the admin metrics.
	Registry *prometheus.Registry
	// Now is the clock that decides "today" for usage reports.
	// Default: time.Now.
	Now func() time.Time
	// Logger receives one line per failed request. Default: slog.Default().
	Logger *slog.Logger
	// ClusterStatus, when set, is served as JSON on GET /cluster (an
	// extension): the leader, the members and this node's applied index.
	ClusterStatus func() any
	// Ready, when set, tells whether this node has caught up with the
	// cluster since it started. Until it has, every route of the API but
	// /healthz, /metrics and /cluster answers 503 ServiceUnavailableException
	// with Retry-After (writes too: they check the current state before
	// they go to Raft), and /healthz answers 503. It is read on every
	// request and must be cheap. Default: always ready.
	Ready func() bool
	// Problem, when set and it returns an error, keeps the node from
	// serving its state as Ready does, for that reason (this node cannot
	// unwrap the cluster's data key): /healthz answers 503 and says it,
	// the other routes but /metrics and /cluster answer 503 with it. It is
	// read on every request and must be cheap. Default: no problem.
	Problem func() error
	// Progress, when set, gives the Raft indexes /healthz shows: the last
	// one this node applied and the one it must reach to be ready.
	Progress func() (applied, target uint64)
	// AllowedHosts are the Host header values the API answers besides its
	// own: the address of the listener a request came in on, and
	// localhost, 127.0.0.1 and [::1] on the listener's port. Each is a
	// name or an address, any port, or with ":port", that port only; "*"
	// accepts any Host. Any other Host is answered 403 ForbiddenException
	// and nothing runs (a DNS-rebinding page names its own host).
	AllowedHosts []string
	// AnonymousRemote lets callers on other hosts in without a credential
	// while the cluster holds none, as callers on this host are. Once a
	// credential exists, every request but GET /healthz needs one in any
	// case. Default: false (only callers on this host, before the first
	// credential).
	AnonymousRemote bool
}

// Validate reports whether the configuration can build a Server.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("admin: Config.Store is required")
	}
	for _, h := range c.AllowedHosts {
		if err := CheckAllowedHost(h); err != nil {
			return fmt.Errorf("admin: Config.AllowedHosts: %w", err)
		}
	}
	return nil
}

// Server is the admin API. It implements http.Handler.
type Server struct {
	store    Store
	now      func() time.Time
	log      *slog.Logger
	mux      *http.ServeMux
	patterns map[string]bool // registered patterns: the only route labels
	metrics  *metrics
	reg      *prometheus.Registry
	cluster  func() any
	ready    func() bool
	problem  func() error
	progress func() (applied, target uint64)
	// allowedHosts are Config.AllowedHosts, parsed.
	allowedHosts    []hostRule
	anonymousRemote bool
	keyOrder        keyOrder // GetApiKeys' order, kept while the keys do not change
}

// New builds a Server from a validated Config.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{store: cfg.Store, now: cfg.Now, log: cfg.Logger, reg: cfg.Registry, cluster: cfg.ClusterStatus,
		ready: cfg.Ready, problem: cfg.Problem, progress: cfg.Progress, anonymousRemote: cfg.AnonymousRemote}
	for _, h := range cfg.AllowedHosts {
		rule, _ := parseHostRule(h) // checked by Validate
		s.allowedHosts = append(s.allowedHosts, rule)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.mux = http.NewServeMux()
	s.patterns = map[string]bool{}
	s.routes()
	return s, nil
}

// handlerFunc is an admin handler: it writes a success itself or returns
// the error to answer with.
type handlerFunc func(w http.ResponseWriter, r *http.Request) *apiError

func (s *Server) handle(pattern string, h handlerFunc) {
	s.patterns[pattern] = true
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if e := h(w, r); e != nil {
			s.writeError(w, r, e)
		}
	})
}

func (s *Server) routes() {
	s.handle("GET /healthz", s.healthz)
	metricsHandler := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	s.handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) *apiError {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})

	s.handle("GET /cluster", func(w http.ResponseWriter, r *http.Request) *apiError {
		if s.cluster == nil {
			return notFound("This node serves no cluster status")
		}
		writeJSON(w, http.StatusOK, s.cluster())
		return nil
	})

	s.handle("GET /account", s.getAccount)
	s.handle("PATCH /account", s.updateAccount)

	s.handle("POST /restapis", s.createRestAPI)
	s.handle("GET /restapis", s.listRestAPIs)
	s.handle("GET /restapis/{restapi_id}", s.getRestAPI)
	s.handle("PATCH /restapis/{restapi_id}", s.updateRestAPI)
	s.handle("DELETE /restapis/{restapi_id}", s.deleteRestAPI)

	s.handle("POST /restapis/{restapi_id}/deployments", s.createDeployment)
	s.handle("GET /restapis/{restapi_id}/deployments", s.listDeployments)
	s.handle("GET /restapis/{restapi_id}/deployments/{deployment_id}", s.getDeployment)
	s.handle("PATCH /restapis/{restapi_id}/deployments/{deployment_id}", s.updateDeployment)
	s.handle("DELETE /restapis/{restapi_id}/deployments/{deployment_id}", s.deleteDeployment)

	s.resourceRoutes()

	s.handle("POST /restapis/{restapi_id}/stages", s.createStage)
	s.handle("GET /restapis/{restapi_id}/stages", s.listStages)
	s.handle("GET /restapis/{restapi_id}/stages/{stage_name}", s.getStage)
	s.handle("PATCH /restapis/{restapi_id}/stages/{stage_name}", s.updateStage)
	s.handle("DELETE /restapis/{restapi_id}/stages/{stage_name}", s.deleteStage)
	s.handle("POST /restapis/{restapi_id}/stages/{stage_name}/defaultusageplan", s.createDefaultPlan)

	s.handle("POST /usageplans", s.createUsagePlan)
	s.handle("GET /usageplans", s.listUsagePlans)
	s.handle("GET /usageplans/{usageplan_id}", s.getUsagePlan)
	s.handle("PATCH /usageplans/{usageplan_id}", s.updateUsagePlan)
	s.handle("DELETE /usageplans/{usageplan_id}", s.deleteUsagePlan)

	s.handle("POST /usageplans/{usageplan_id}/keys", s.createUsagePlanKey)
	s.handle("GET /usageplans/{usageplan_id}/keys", s.listUsagePlanKeys)
	s.handle("GET /usageplans/{usageplan_id}/keys/{key_id}", s.getUsagePlanKey)
	s.handle("DELETE /usageplans/{usageplan_id}/keys/{key_id}", s.deleteUsagePlanKey)

	s.handle("GET /usageplans/{usageplan_id}/usage", s.getUsage)
	s.handle("GET /usageplans/{usageplan_id}/notifications", s.listNotices)
	s.handle("PATCH /usageplans/{usageplan_id}/keys/{key_id}/usage", s.updateUsage)

	s.handle("POST /apikeys", s.createOrImportAPIKeys)
	s.handle("GET /apikeys", s.listAPIKeys)
	s.handle("GET /apikeys/{api_key}", s.getAPIKey)
	s.handle("PATCH /apikeys/{api_key}", s.updateAPIKey)
	s.handle("DELETE /apikeys/{api_key}", s.deleteAPIKey)

	s.handle("PUT /tags/{resource_arn...}", s.tagResource)
	s.handle("DELETE /tags/{resource_arn...}", s.untagResource)
	s.handle("GET /tags/{resource_arn...}", s.getTags)

	s.handle("POST /tollgate/credentials", s.createCredential)
	s.handle("GET /tollgate/credentials", s.listCredentials)
	s.handle("DELETE /tollgate/credentials/{credential_id}", s.deleteCredential)
}

// ServeHTTP answers one admin request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := newRequestID()
	rec := &statusRecorder{ResponseWriter: w}
	rec.Header().Set("x-amzn-RequestId", rid)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, rid))

	_, pattern := s.mux.Handler(r)
	route := pattern
	var who *principal
	var authErr *apiError
	hostOK := s.hostAllowed(r)
	if pattern != "GET /healthz" && hostOK {
		// Before the route is looked at: a caller without a credential
		// learns nothing, not even which routes exist.
		r, who, authErr = s.authenticate(rec, r)
		if who != nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, who))
		}
	}
	typeErr := checkContentType(r, pattern)
	var denied *apiError
	if who != nil {
		denied = authorize(who, r, pattern)
	}
	switch {
	case !hostOK:
		// Before anything else: a page that rebound its name to this
		// host must learn nothing, not even which routes exist.
		route = "refused"
		s.writeError(rec, r, hostRefused(r))
	case authErr != nil:
		route = "unauthenticated"
		s.writeError(rec, r, authErr)
	case !canonicalPath(r.URL.EscapedPath()) || (pattern != "" && !s.patterns[pattern]):
		// ServeMux would redirect to the cleaned path (with an HTML body);
		// the API answers in its own shape instead. (For some redirects the
		// mux reports the path as the pattern: it never becomes a label.)
		route = "unmatched"
		s.writeError(rec, r, notFound("No route matches "+r.Method+" "+r.URL.Path+": the path is not canonical (no //, . or .. segments)"))
	case pattern == "":
		route = "unmatched"
		s.unmatched(rec, r)
	case denied != nil:
		s.writeError(rec, r, denied)
	case typeErr != nil:
		// Before readiness: a refused body is refused on every node alike.
		s.writeError(rec, r, typeErr)
	case !s.isReady() && !ungated[pattern]:
		s.writeError(rec, r, unavailable("This node has not caught up with the cluster since it started; retry shortly or ask another node"))
	case !ungated[pattern] && s.problemNow() != nil:
		s.writeError(rec, r, unavailable("This node cannot serve now: "+s.problemNow().Error()+"; ask another node"))
	default:
		s.mux.ServeHTTP(rec, r)
	}
	code := rec.status
	if code == 0 {
		code = http.StatusOK
	}
	if who != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.audit(r, who, code)
	}
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// unmatched answers a request no route takes: 405 when the path exists for
// other methods, 404 otherwise, in the API's error shape.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	probe := &probeWriter{header: http.Header{}}
	h, _ := s.mux.Handler(r)
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowedException",
			msg: "Method " + r.Method + " is not allowed on " + r.URL.Path})
		return
	}
	s.writeError(w, r, notFound("No route matches "+r.Method+" "+r.URL.Path))
}

// canonicalPath reports whether p is already clean: absolute, without
// empty, "." or ".." segments (a trailing slash is kept as is).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

type requestIDKey struct{}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// probeWriter captures what ServeMux's own 404 and 405 handlers write.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }
