package openapitest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/openapitest"
)

func TestSpecIsValid(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
}

// recorder is a testing.TB that keeps what Errorf reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// fake answers every request with one canned response.
type fake struct {
	status int
	header http.Header
	body   []byte
}

func (f fake) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: f.status, Header: f.header, Body: io.NopCloser(bytes.NewReader(f.body))}, nil
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

const sid = "0195f0c8-9c1e-7b6a-8f00-3c2a8f1e0a11"

func TestTransport(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	problemCT := http.Header{"Content-Type": {"application/problem+json"}}
	tokenHd := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}
		for i := 0; i < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	feedHd := func(enc string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-cache"}, "X-Revocation-Cursor": {"1700000000"}}
		if enc != "" {
			h.Set("Content-Encoding", enc)
		}
		return h
	}
	problem := `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"a bearer access token is required"}`
	for _, tc := range []struct {
		name, method, path string
		res                fake
		want               string // substring of the reported error; empty: none
	}{
		{"token ok", "POST", "/token", fake{200, tokenHd(),
			[]byte(`{"access_token":"a.b.c","token_type":"Bearer","expires_in":600,"refresh_token":"r","sid":"` + sid + `"}`)}, ""},
		{"token renamed field", "POST", "/token", fake{200, tokenHd(),
			[]byte(`{"accessToken":"a.b.c","token_type":"Bearer","expires_in":600,"sid":"` + sid + `"}`)}, "access_token"},
		{"token without no-store", "POST", "/token", fake{200, jsonCT,
			[]byte(`{"access_token":"a.b.c","token_type":"Bearer","expires_in":600,"sid":"` + sid + `"}`)}, "Cache-Control"},
		{"token bad sid", "POST", "/token", fake{200, tokenHd(),
			[]byte(`{"access_token":"a.b.c","token_type":"Bearer","expires_in":600,"sid":"nope"}`)}, "uuid"},
		{"token error code", "POST", "/token", fake{400, tokenHd(), []byte(`{"error":"bad_thing"}`)}, "bad_thing"},
		{"token 401 without challenge", "POST", "/token", fake{401, tokenHd(), []byte(`{"error":"invalid_client"}`)}, "WWW-Authenticate"},
		{"token 401", "POST", "/token", fake{401, tokenHd("WWW-Authenticate", `Basic realm="authd"`), []byte(`{"error":"invalid_client"}`)}, ""},
		{"token 429 without Retry-After", "POST", "/token", fake{429, tokenHd(), []byte(`{"error":"invalid_request"}`)}, "Retry-After"},
		{"token undocumented status", "POST", "/token", fake{418, tokenHd(), []byte(`{"error":"invalid_request"}`)}, "418"},
		{"problem as json", "POST", "/logout", fake{401, http.Header{"Content-Type": {"application/json"},
			"Www-Authenticate": {`Bearer realm="authd"`}}, []byte(problem)}, "content type"},
		{"problem ok", "POST", "/logout", fake{401, http.Header{"Content-Type": {"application/problem+json"},
			"Www-Authenticate": {`Bearer realm="authd", error="invalid_token"`}}, []byte(problem)}, ""},
		{"bad bearer challenge", "POST", "/logout", fake{401, http.Header{"Content-Type": {"application/problem+json"},
			"Www-Authenticate": {`Basic`}}, []byte(problem)}, "WWW-Authenticate"},
		{"unknown route", "GET", "/nope", fake{404, problemCT, []byte(problem)}, "not in the spec"},
		{"wrong method", "GET", "/logout", fake{405, problemCT, []byte(problem)}, "not in the spec"},
		{"feed gzip", "GET", "/sessions/revoked?since=1", fake{200, feedHd("gzip"),
			gz(`[{"jti":"j","sid":"` + sid + `","exp":1700000600}]`)}, ""},
		{"feed gzip drift", "GET", "/sessions/revoked", fake{200, feedHd("gzip"),
			gz(`[{"jti":"j","sid":"` + sid + `","expires":1700000600}]`)}, "exp"},
		{"feed not gzip", "GET", "/sessions/revoked", fake{200, feedHd("gzip"), []byte(`[]`)}, "gzip"},
		{"feed bad cursor", "GET", "/sessions/revoked", fake{200, http.Header{"Content-Type": {"application/json"},
			"Cache-Control": {"no-cache"}, "X-Revocation-Cursor": {"soon"}}, []byte(`[]`)}, "X-Revocation-Cursor"},
		{"feed null", "GET", "/sessions/revoked", fake{200, feedHd(""), []byte(`null`)}, "null"},
		{"metrics", "GET", "/metrics", fake{200, http.Header{"Content-Type": {"text/plain; version=0.0.4; charset=utf-8"}},
			[]byte("# HELP x y\nx 1\n")}, ""},
		{"metrics as json", "GET", "/metrics", fake{200, jsonCT, []byte(`{}`)}, "content type"},
		{"session nullable", "GET", "/sessions", fake{200, jsonCT, []byte(`{"items":[{"sid":"` + sid + `",
			"created_at":"2026-01-02T03:04:05Z","last_refreshed_at":null,"expires_at":"2026-02-01T03:04:05Z",
			"user_agent":null,"ip":null,"current":true,"revoked_at":null,"revoked_reason":null}],"next_cursor":null}`)}, ""},
		{"session missing member", "GET", "/sessions", fake{200, jsonCT, []byte(`{"items":[{"sid":"` + sid + `",
			"created_at":"2026-01-02T03:04:05Z","expires_at":"2026-02-01T03:04:05Z",
			"user_agent":null,"ip":null,"current":true,"revoked_at":null,"revoked_reason":null}],"next_cursor":null}`)}, "last_refreshed_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			c := &http.Client{Transport: openapitest.Transport(rec, tc.res)}
			req, _ := http.NewRequest(tc.method, "http://authd.test"+tc.path, strings.NewReader(""))
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			if !bytes.Equal(got, tc.res.body) {
				t.Errorf("the body was not handed back unchanged")
			}
			switch {
			case tc.want == "" && len(rec.errs) > 0:
				t.Errorf("unexpected report:\n%s", strings.Join(rec.errs, "\n"))
			case tc.want != "" && len(rec.errs) == 0:
				t.Errorf("no report; want one mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(strings.Join(rec.errs, "\n"), tc.want):
				t.Errorf("report does not mention %q:\n%s", tc.want, strings.Join(rec.errs, "\n"))
			}
		})
	}
}

func TestCheck(t *testing.T) {
	rec := &recorder{TB: t}
	req, _ := http.NewRequest("GET", "http://authd.test/healthz", nil)
	openapitest.Check(rec, req, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"ok"}`))
	if len(rec.errs) > 0 {
		t.Fatalf("unexpected report: %v", rec.errs)
	}
	openapitest.Check(rec, req, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"fine"}`))
	if len(rec.errs) != 1 {
		t.Fatalf("want one report, got %v", rec.errs)
	}
}
