package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
	"github.com/tollgate/tollgate/sealing"
)

// Who may call the admin API (see "Authentication" in doc.go). While the
// cluster holds no admin credential, callers on this host are let in as
// "anonymous" with every right, as before credentials existed; once one
// exists, every request but /healthz must carry a valid one: AWS Signature
// Version 4 or a bearer token.

// Actor names for commands that no credential asked for.
const actorAnonymous = "anonymous"

// Error answers of the original for failed authentication.
const (
	msgMissingToken     = "Missing Authentication Token"
	msgUnrecognized     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

func missingToken() *apiError {
	return &apiError{status: http.StatusForbidden, code: "MissingAuthenticationTokenException", msg: msgMissingToken}
}

func unrecognizedClient() *apiError {
	return &apiError{status: http.StatusForbidden, code: "UnrecognizedClientException", msg: msgUnrecognized}
}

func invalidSignature(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "InvalidSignatureException", msg: msg}
}

func incompleteSignature(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "IncompleteSignatureException", msg: msg}
}

func accessDenied(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "AccessDeniedException", msg: msg}
}

// principal is the caller a request was authenticated as.
type principal struct {
	actor string // the credential's id, or actorAnonymous
	role  string // rules.RoleAdmin or rules.RoleReadOnly
}

type principalKey struct{}

// actorFrom is who asked for the request in ctx: the Raft command it leads
// to carries it.
func actorFrom(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p.actor
	}
	return ""
}

// authenticate decides who is calling. It returns the request to serve
// (its body, read to check a signature, can be read again) and the caller,
// or the answer that refuses it.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, *principal, *apiError) {
	creds := s.store.Config().GetAdminCredentials()
	if len(creds) == 0 {
		if !s.anonymousRemote && !fromLoopback(r) {
			return r, nil, accessDenied("The admin API has no credentials yet, so it answers only callers on its own host: create one there with tollgate admin-credentials create")
		}
		return r, &principal{actor: actorAnonymous, role: rules.RoleAdmin}, nil
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		return r, nil, missingToken()
	case hasPrefixFold(auth, "Bearer "):
		p, e := s.checkBearer(r.Context(), creds, strings.TrimSpace(auth[len("Bearer "):]))
		return r, p, e
	case strings.HasPrefix(auth, sigV4Algorithm+" "):
		return s.checkSigV4(w, r, creds, auth)
	default:
		return r, nil, incompleteSignature("Authorization header requires an AWS Signature Version 4 (" + sigV4Algorithm + " Credential=..., SignedHeaders=..., Signature=...) or a bearer token (Bearer <id>.<secret>).")
	}
}

// checkBearer checks a bearer token "<id>.<secret>" against the secret's
// lookup hash, in constant time.
func (s *Server) checkBearer(ctx context.Context, creds map[string]*pb.AdminCredential, token string) (*principal, *apiError) {
	id, secret, ok := strings.Cut(token, ".")
	cred := creds[id]
	if !ok || cred == nil {
		return nil, unrecognizedClient()
	}
	keys, e := s.sealingKeys(ctx)
	if e != nil {
		return nil, e
	}
	sum, ok := keys.Lookup(secret)
	if !ok || !sealing.Equal(sum[:], cred.SecretLookup) {
		return nil, unrecognizedClient()
	}
	return &principal{actor: cred.Id, role: cred.Role}, nil
}

// checkSigV4 checks an AWS Signature Version 4 (sigv4.go). The body is
// read, up to the body limit, to hash it, and put back for the handler.
func (s *Server) checkSigV4(w http.ResponseWriter, r *http.Request, creds map[string]*pb.AdminCredential, auth string) (*http.Request, *principal, *apiError) {
	sig, e := parseSigV4(auth)
	if e != nil {
		return r, nil, e
	}
	cred := creds[sig.accessKeyID]
	if cred == nil || r.Header.Get("X-Amz-Security-Token") != "" {
		// Tollgate issues no session tokens: one names no credential here.
		return r, nil, unrecognizedClient()
	}
	body, e := readBody(w, r)
	if e != nil {
		return r, nil, e
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return r, nil, invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	keys, e := s.sealingKeys(r.Context())
	if e != nil {
		return r, nil, e
	}
	secret, err := keys.Open(cred.SecretSealed, credentialPurpose(cred.Id))
	if err != nil {
		return r, nil, unavailable("The secret of credential " + cred.Id + " cannot be unsealed on this node; check its key-encryption key file")
	}
	if e := sig.verify(r, secret, payload, s.now()); e != nil {
		return r, nil, e
	}
	return r, &principal{actor: cred.Id, role: cred.Role}, nil
}

// credentialPurpose is what a credential's secret is sealed for: a sealed
// secret copied onto another credential does not open.
func credentialPurpose(id string) string { return "admin-credential/" + id }

// authorize tells whether the caller's role may use the route: read-only
// callers may read (GET and HEAD) everything but the credentials.
func authorize(p *principal, r *http.Request, pattern string) *apiError {
	if p.role == rules.RoleAdmin {
		return nil
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if read && !strings.HasPrefix(pattern, "GET /tollgate/credentials") {
		return nil
	}
	return accessDenied("User: " + p.actor + " is not authorized to perform: " + r.Method + " on resource: " + r.URL.Path + " (its role is " + p.role + ")")
}

// fromLoopback tells whether the request came from this host. A handler
// called directly, not through net/http, has no listener and no peer: the
// caller is in this process.
func fromLoopback(r *http.Request) bool {
	if r.Context().Value(http.LocalAddrContextKey) == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return host == "localhost"
	}
	return ap.Addr().Unmap().IsLoopback()
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
