package admin

import (
	"context"
	"crypto/hmac"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS Signature Version 4, as the AWS SDKs and CLI sign API Gateway
// requests:
//
//	Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260315/us-east-1/apigateway/aws4_request,
//	    SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex>
//	X-Amz-Date: 20260315T120000Z
//
// The signature is not computed here: the request is rebuilt with only the
// headers it signed, signed again with the AWS SDK's own signer under the
// stored secret, and the two signatures compared in constant time. So a
// header the SDK's signer never signs (User-Agent, Expect,
// Transfer-Encoding, X-Amzn-Trace-Id) cannot be signed by a client either.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	sigV4Service   = "apigateway"
	sigV4Window    = 5 * time.Minute // how far X-Amz-Date may be from this node's clock
	amzDateFormat  = "20060102T150405Z"
)

// sigV4 is a parsed Authorization header.
type sigV4 struct {
	accessKeyID   string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	signedHeaders []string // lower case, as sent
	signature     string   // 64 lower-case hex digits
}

// maxAuthorizationLen bounds the header parsed.
const maxAuthorizationLen = 8 << 10

// parseSigV4 parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." strictly: each part once, nothing else.
func parseSigV4(h string) (*sigV4, *apiError) {
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok || len(h) > maxAuthorizationLen {
		return nil, incompleteSignature("Authorization header requires an " + sigV4Algorithm + " signature.")
	}
	parts := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || v == "" {
			return nil, incompleteSignature(fmt.Sprintf("Authorization header requires each component as name=value: %q is not.", truncate(strings.TrimSpace(p))))
		}
		switch k {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return nil, incompleteSignature(fmt.Sprintf("Authorization header has an unknown component %q.", truncate(k)))
		}
		if _, dup := parts[k]; dup {
			return nil, incompleteSignature(fmt.Sprintf("Authorization header has '%s' twice.", k))
		}
		parts[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if parts[k] == "" {
			missing = append(missing, "Authorization header requires '"+k+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return nil, incompleteSignature(strings.Join(missing, " "))
	}
	scope := strings.Split(parts["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" || scope[2] == "" {
		return nil, incompleteSignature("Credential should have the form <access key id>/<yyyymmdd>/<region>/apigateway/aws4_request.")
	}
	if _, err := time.Parse("20060102", scope[1]); err != nil || len(scope[1]) != 8 {
		return nil, incompleteSignature(fmt.Sprintf("Date in Credential scope must be yyyymmdd, not '%s'.", truncate(scope[1])))
	}
	if scope[3] != sigV4Service {
		return nil, invalidSignature(fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", sigV4Service))
	}
	if scope[4] != "aws4_request" {
		return nil, invalidSignature(fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", truncate(scope[4])))
	}
	sig := parts["Signature"]
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		return nil, incompleteSignature("Signature should be 64 lower-case hexadecimal digits.")
	}
	signed := strings.Split(parts["SignedHeaders"], ";")
	host := false
	for _, name := range signed {
		if name == "" || name != strings.ToLower(name) || !validHeaderName(name) {
			return nil, incompleteSignature(fmt.Sprintf("SignedHeaders should be lower-case header names separated by ';', not '%s'.", truncate(parts["SignedHeaders"])))
		}
		host = host || name == "host"
	}
	if !host {
		return nil, invalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return &sigV4{accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3],
		signedHeaders: signed, signature: sig}, nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// verify checks the signature of r under secret: its date against now,
// then the signature itself. payload is the hex SHA-256 of the body.
func (sig *sigV4) verify(r *http.Request, secret, payload string, now time.Time) *apiError {
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return incompleteSignature("Authorization header requires existence of a 'X-Amz-Date' header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return incompleteSignature(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", truncate(amzDate)))
	}
	if d := t.Format("20060102"); d != sig.date {
		return invalidSignature(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", sig.date, d, amzDate))
	}
	now = now.UTC()
	if t.Before(now.Add(-sigV4Window)) {
		return invalidSignature(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-sigV4Window).Format(amzDateFormat), now.Format(amzDateFormat)))
	}
	if t.After(now.Add(sigV4Window)) {
		return invalidSignature(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(sigV4Window).Format(amzDateFormat), now.Format(amzDateFormat)))
	}
	want, err := sig.expected(r, secret, payload, t)
	if err != nil || !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return invalidSignature(msgSignatureInvalid)
	}
	return nil
}

// expected is the signature the AWS SDK's signer computes for r under
// secret, signing only the headers the client signed.
func (sig *sigV4) expected(r *http.Request, secret, payload string, t time.Time) (string, error) {
	path := r.URL.EscapedPath()
	if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
		path = p // exactly as sent
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	req := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Opaque: "//" + r.Host + path, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range sig.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				vals = []string{""}
			}
			req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
		}
	}
	// A signer per request: the SDK's signer caches derived keys by
	// access key id only, and a credential may be deleted and added again
	// with the same id and another secret.
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: sig.accessKeyID, SecretAccessKey: secret},
		req, payload, sig.service, sig.region, t)
	if err != nil {
		return "", err
	}
	_, got, ok := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", fmt.Errorf("the signer wrote no signature")
	}
	return got, nil
}
