package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Cookie names.
const (
	tokenCookie = "tollgate_token"
	csrfCookie  = "tollgate_csrf"
)

// maxForm is the largest form body a console handler reads: a key import
// up to the admin API's body limit, and the form around it.
const maxForm = 1<<20 + 64<<10

// Config configures a Console.
type Config struct {
	// API is the admin API's handler: every page reads through it and every
	// form changes through it. Required.
	API http.Handler
	// Gatherer is the registry the overview samples for requests per
	// second. Default: none (the overview shows no rates).
	Gatherer prometheus.Gatherer
	// SampleEvery is the interval between two samples of Gatherer; the
	// overview shows the last hour of them. Default: 10s.
	SampleEvery time.Duration
	// Now is the clock that decides the usage page's default dates (UTC)
	// and stamps samples. Default: time.Now.
	Now func() time.Time
	// Logger receives the console's failures to render. Default: slog.Default().
	Logger *slog.Logger
}

// Validate reports whether the configuration can build a Console.
func (c Config) Validate() error {
	if c.API == nil {
		return errors.New("console: Config.API is required")
	}
	if c.SampleEvery < 0 {
		return errors.New("console: Config.SampleEvery must not be negative")
	}
	return nil
}

// Console serves the web console. It implements http.Handler for the paths
// under Prefix.
type Console struct {
	api   http.Handler
	now   func() time.Time
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	rates *rates

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New builds a Console from a validated Config. Start begins sampling the
// rates; Close stops it.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Console{api: cfg.API, now: cfg.Now, log: cfg.Logger, stop: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	every := cfg.SampleEvery
	if every == 0 {
		every = 10 * time.Second
	}
	c.rates = newRates(cfg.Gatherer, every)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

// Start samples the rates every Config.SampleEvery until Close. Without
// Config.Gatherer it does nothing.
func (c *Console) Start() {
	if c.rates.gatherer == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.rates.every)
		defer t.Stop()
		c.rates.sample(c.now())
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.rates.sample(c.now())
			}
		}
	}()
}

// Close stops the sampling Start began and waits for it; it may be called
// without Start, and more than once.
func (c *Console) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// ServeHTTP answers one console request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make form posts say Origin: null
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// answer is an admin API response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a *answer) ok() bool { return a.status >= 200 && a.status < 300 }

// message is the admin API's error message, with its error type.
func (a *answer) message() string {
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(a.body, &m); err != nil || m.Message == "" {
		return http.StatusText(a.status)
	}
	return m.Message
}

// needsLogin tells whether the admin API refused the caller for want of a
// valid credential (rather than for its role or its Host).
func (a *answer) needsLogin() bool {
	switch a.header.Get("x-amzn-ErrorType") {
	case "MissingAuthenticationTokenException", "UnrecognizedClientException":
		return true
	}
	return false
}

// decode reads a successful JSON answer into v.
func (a *answer) decode(v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return errors.New("the admin API's answer could not be read: " + err.Error())
	}
	return nil
}

// recorder keeps what the admin API writes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// call sends one request to the admin API in process, as the browser's
// request r: its context (listener and peer), Host, TLS state and
// credential (the token cookie, as a bearer token). contentType is sent
// with a body.
func (c *Console) call(r *http.Request, method, path string, body []byte, contentType string, accept string) *answer {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return &answer{status: http.StatusBadRequest, header: http.Header{}, body: errorBody("Bad request: " + err.Error())}
	}
	req.Host = r.Host
	req.RemoteAddr = r.RemoteAddr
	req.TLS = r.TLS
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if tok := token(r); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &answer{status: rec.status, header: rec.header, body: rec.body.Bytes()}
}

// get reads a JSON answer into v; a failure is the answer.
func (c *Console) get(r *http.Request, path string, v any) *answer {
	a := c.call(r, http.MethodGet, path, nil, "", "application/json")
	if !a.ok() {
		return a
	}
	if err := a.decode(v); err != nil {
		return &answer{status: http.StatusBadGateway, header: http.Header{}, body: errorBody(err.Error())}
	}
	return nil
}

// send writes a JSON body; a failure is the answer.
func (c *Console) send(r *http.Request, method, path string, body any) *answer {
	b, err := json.Marshal(body)
	if err != nil {
		return &answer{status: http.StatusBadRequest, header: http.Header{}, body: errorBody(err.Error())}
	}
	a := c.call(r, method, path, b, "application/json", "application/json")
	if !a.ok() {
		return a
	}
	return nil
}

func errorBody(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"message": msg})
	return b
}

// token is the bearer token the browser signed in with, or "".
func token(r *http.Request) string {
	ck, err := r.Cookie(tokenCookie)
	if err != nil {
		return ""
	}
	return ck.Value
}

// cookie builds one of the console's cookies.
func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// csrfToken is the session's CSRF token, made (and set as a cookie) when
// the browser has none.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	return newCSRF(w, r)
}

// newCSRF starts a new session's CSRF token.
func newCSRF(w http.ResponseWriter, r *http.Request) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, cookie(r, csrfCookie, v, 0))
	// Forms rendered in this answer must carry the new token.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// checkPost refuses a form post that does not carry the session's CSRF
// token or comes from another site: it returns why, or "". It reads the
// form (up to maxForm).
func checkPost(w http.ResponseWriter, r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "The form came from another site (Origin " + o + ")"
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return "The form came from another site"
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(maxForm); err != nil {
			return "The form could not be read: " + err.Error()
		}
	} else if err := r.ParseForm(); err != nil {
		return "The form could not be read: " + err.Error()
	}
	ck, err := r.Cookie(csrfCookie)
	got := r.PostFormValue("csrf")
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(got)) != 1 {
		return "The form's session token is missing or stale: reload the page and send it again"
	}
	return ""
}

// Handler is the admin listener's handler: the console under Prefix (and
// /console redirected there), the admin API (Config.API) at every other
// path, each answering as it would alone.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, Prefix):
			c.ServeHTTP(w, r)
		default:
			c.api.ServeHTTP(w, r)
		}
	})
}
