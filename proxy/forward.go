package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Headers the proxy sets on every forwarded request, after deleting any
// copy the client sent: the id (never the value) of the API key that let
// the request in (absent on a keyless stage), and Config.NodeID.
const (
	HeaderKeyID = "X-Tollgate-Key-Id"
	HeaderNode  = "X-Tollgate-Node"
)

// errUpstreamTimeout is the cause of a forwarding context canceled because
// the upstream's response headers took longer than Config.UpstreamTimeout.
var errUpstreamTimeout = errors.New("proxy: upstream response headers timed out")

func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		BufferPool:     &bufferPool{},
	}
}

// bufferPool recycles the buffers ReverseProxy copies response bodies
// through (otherwise 32 KiB per response).
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}

// forward sends the request to the stage's upstream. The exchange becomes
// the request's context: canceled when the inbound request is, or with
// errUpstreamTimeout when the response headers are late.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, ex *exchange) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	ex.Context, ex.parent, ex.cancel = ctx, r.Context(), cancel
	ex.fwdStart = p.clock.Now()
	ex.timer = time.AfterFunc(p.upstreamTimeout, func() { cancel(errUpstreamTimeout) })
	defer ex.timer.Stop()

	if ex.upgrade {
		// The tunnel outlives the server's ReadTimeout, which would cut it
		// (Hijack keeps the connection's deadlines). The connection cap
		// bounds how many there are.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	out := r.WithContext(ex)
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length: cut it at the limit. (A known length
		// over the limit was refused before; the server bounds one under it.)
		out.Body = http.MaxBytesReader(w, r.Body, p.maxBody)
	}
	p.rp.ServeHTTP(w, out)
}

// rewrite builds the upstream request (ReverseProxy has already removed
// hop-by-hop and forwarding headers from it).
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(exchangeKey{}).(*exchange)
	st, out := ex.stage, pr.Out
	target := st.target
	var raw string
	if rt := ex.route; rt != nil {
		target, raw = rt.target, rt.upstreamPath(ex.rest, &ex.params)
		if rt.method != "" {
			out.Method = rt.method
		}
	} else {
		raw = joinPath(st.targetPath, ex.rest)
	}

	u := out.URL
	u.Scheme, u.Host = target.Scheme, target.Host
	if path, err := url.PathUnescape(raw); err == nil {
		u.Path, u.RawPath = path, raw
	} else {
		// Cannot happen for a clean path and a parsed target; keep the
		// escaped form rather than forward something else.
		u.Path, u.RawPath = raw, ""
	}
	switch {
	case target.RawQuery == "":
	case u.RawQuery == "":
		u.RawQuery = target.RawQuery
	default:
		u.RawQuery = target.RawQuery + "&" + u.RawQuery
	}
	out.Host = "" // the upstream's host, never the client's

	pr.SetXForwarded()
	delete(out.Header, hdrAPIKey)
	delete(out.Header, hdrRealIP)
	// Who the request came as and through: the gateway's word, never the
	// client's (any copy it sent is gone).
	delete(out.Header, HeaderKeyID)
	delete(out.Header, HeaderNode)
	if ex.key != nil {
		out.Header[HeaderKeyID] = []string{ex.key.id}
	}
	if p.nodeID != "" {
		out.Header[HeaderNode] = []string{p.nodeID}
	}
}

// modifyResponse runs when the upstream's response headers arrive.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	ex, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return nil
	}
	ex.timer.Stop()
	ex.status = resp.StatusCode
	if s := ex.stage.stats; s != nil {
		s.observeUpstream(p.clock.Now().Sub(ex.fwdStart))
	}
	ex.limitHeaders(resp.Header)
	return nil
}

// upstreamError answers a request the upstream did not answer: 413 when the
// request body crossed the limit, 504 on a timeout, 502 otherwise.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil { // not a request of ours: cannot happen
		p.log.Error("upstream error outside a proxied request", "error", err)
		ansBadGateway.write(w)
		return
	}
	ex.timer.Stop()
	if s := ex.stage.stats; s != nil {
		s.observeUpstream(p.clock.Now().Sub(ex.fwdStart))
	}
	var tooLarge *http.MaxBytesError
	var a *answer
	level, msg := slog.LevelWarn, "upstream request failed"
	switch {
	case errors.As(err, &tooLarge):
		a, level = &ansTooLarge, slog.LevelDebug
	case errors.Is(err, ErrUpstreamRefused):
		// A stage pointing where it may not: the operator's to fix.
		a, level, msg = &ansInternal, slog.LevelError, "upstream address refused"
	case ex.parent.Err() != nil:
		// The client went away; nobody reads this answer.
		a, level = &ansBadGateway, slog.LevelDebug
	case context.Cause(ex) == errUpstreamTimeout || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		a = &ansTimeout
	default:
		a = &ansBadGateway
	}
	id := newRequestID()
	if p.log.Enabled(ex.parent, level) {
		attrs := append(logAttrsStage(ex.stage),
			slog.Int("status", a.status), slog.String("request_id", id), slog.String("error", err.Error()))
		p.log.LogAttrs(ex.parent, level, msg, attrs...)
	}
	ex.reply(w, a, id)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// write sends a without limit headers (for errors outside an exchange).
func (a *answer) write(w http.ResponseWriter) {
	h := w.Header()
	h[hdrContentType] = jsonType[:1:1]
	h[hdrContentLength] = a.length[:1:1]
	h[hdrRequestID] = []string{newRequestID()}
	h[hdrErrorType] = a.errType[:1:1]
	w.WriteHeader(a.status)
	w.Write(a.body) //nolint:errcheck // the client went away: nothing to do
}
