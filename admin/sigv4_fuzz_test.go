package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/cluster/clustertest"
)

const (
	fuzzAKID   = "TGAKFUZZFUZZFUZZFUZZ"
	fuzzSecret = "fuzzsecretfuzzsecretfuzzsecretfuzzsecret"
)

// fuzzSigned returns the Authorization and X-Amz-Date the AWS SDK's signer
// gives a POST /apikeys?<query> with body at testNow.
func fuzzSigned(query string, body []byte) (auth, date string) {
	req := localRequest("POST", "/apikeys?"+query, nil)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: fuzzAKID, SecretAccessKey: fuzzSecret},
		req, hex.EncodeToString(sum[:]), "apigateway", "us-east-1", testNow)
	return req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date")
}

// FuzzSigV4 sends the admin API requests with any Authorization header,
// X-Amz-Date, query and body. It checks that parsing never fails open (a
// parsed header names an id, a 64-digit signature and signs Host) and that
// a request is accepted only with the signature the stored secret gives
// it: the same request signed under any other secret is refused.
func FuzzSigV4(f *testing.F) {
	store := clustertest.NewMemStore(cluster.NewFSM())
	srv, err := New(Config{Store: store, Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := AddCredentials(f.Context(), store, "anonymous", []Credential{{ID: fuzzAKID, Secret: fuzzSecret, Role: "read-only"}}); err != nil {
		f.Fatal(err)
	}
	genuine := map[[4]string]bool{}
	for _, c := range []struct{ query, body string }{{"", ""}, {"a=b&c=d%20e", `{"name":"x"}`}, {"mode=import&format=csv", "name,key\nk,aaaaaaaaaaaaaaaaaaaaaa\n"}} {
		auth, date := fuzzSigned(c.query, []byte(c.body))
		genuine[[4]string{auth, date, c.query, c.body}] = true
		f.Add(auth, date, c.query, []byte(c.body))
		f.Add(strings.ReplaceAll(auth, ", ", ","), date, c.query, []byte(c.body))
		f.Add(auth, date, c.query+"&x=1", []byte(c.body))
	}
	f.Add("AWS4-HMAC-SHA256 Credential=/20260315/us-east-1/apigateway/aws4_request, SignedHeaders=host, Signature=00", "20260315T120000Z", "", []byte(nil))
	f.Add("Bearer "+fuzzAKID+"."+fuzzSecret, "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, auth, date, query string, body []byte) {
		if sig, e := parseSigV4(auth); e == nil {
			if sig.accessKeyID == "" || strings.Contains(sig.accessKeyID, "/") || len(sig.signature) != 64 || sig.service != sigV4Service {
				t.Fatalf("parsed %q as %+v", auth, sig)
			}
			host := false
			for _, h := range sig.signedHeaders {
				host = host || h == "host"
			}
			if !host {
				t.Fatalf("parsed %q without host signed", auth)
			}
		}
		req := localRequest("POST", "/apikeys", strings.NewReader(string(body)))
		req.URL.RawQuery = query
		req.RequestURI = "/apikeys?" + query
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		accepted := w.Code != 403 || w.Header().Get("x-amzn-ErrorType") == "AccessDeniedException"
		if genuine[[4]string{auth, date, query, string(body)}] && !accepted {
			t.Fatalf("a genuine signature was refused: %d %s", w.Code, w.Body)
		}
		if w.Code != 403 {
			// Answered past authentication: the read-only caller is
			// refused a write only after its signature passed.
			return
		}
		if w.Header().Get("x-amzn-ErrorType") != "AccessDeniedException" {
			return
		}
		if strings.HasPrefix(auth, "Bearer ") {
			return
		}
		sig, e := parseSigV4(auth)
		if e != nil {
			t.Fatalf("accepted an unparsable header %q", auth)
		}
		again := localRequest("POST", "/apikeys", nil)
		again.URL.RawQuery, again.RequestURI = query, "/apikeys?"+query
		again.Header = req.Header.Clone()
		sum := sha256.Sum256(body)
		for _, secret := range []string{fuzzSecret, strings.Repeat("x", 40)} {
			want, err := sig.expected(again, secret, hex.EncodeToString(sum[:]), testNow)
			if (err == nil && want == sig.signature) != (secret == fuzzSecret) {
				t.Fatalf("accepted %q with a signature that does not depend on the secret (%s)", auth, secret)
			}
		}
	})
}
