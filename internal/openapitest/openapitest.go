// Package openapitest checks HTTP responses against authd's OpenAPI
// description (openapi/openapi.yaml), so that tests fail as soon as the server
// and its contract drift apart.
//
// Wrap any client's transport:
//
//	client := &http.Client{Transport: openapitest.Transport(t, http.DefaultTransport)}
//
// and every response that passes through it is checked: its route must be in
// the spec, its status must be documented for that operation, documented
// headers must be present and match, and its content type and (JSON) body
// must match the documented schema. A mismatch is reported with t.Errorf;
// the response is handed back unchanged either way.
//
// Requests are not validated: tests send malformed requests on purpose, and
// what matters is that the server's answer to them is documented.
package openapitest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/seedc5a8123e/authd/openapi"
)

// Load parses openapi.Spec and validates it as an OpenAPI document.
// Each call returns a new document, which the caller may modify.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Spec)
	if err != nil {
		return nil, fmt.Errorf("openapi: parse openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi: openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// Doc returns the parsed and validated spec, failing the test if it is not
// valid. The document is shared: do not modify it.
func Doc(t testing.TB) *openapi3.T {
	t.Helper()
	v, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	return v.doc
}

// validator is the spec with its router, built once per test binary.
type validator struct {
	doc    *openapi3.T
	router routers.Router
}

var shared = sync.OnceValues(func() (*validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	// Route on the path alone: the servers of the spec name a deployment,
	// not the test server's random port.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: build router: %w", err)
	}
	return &validator{doc: doc, router: router}, nil
})

// options are the validation options of every check: the status must be
// documented, security is not re-checked (the server did that), and string
// formats the spec uses are enforced.
func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid",
				openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
		},
	}
}

// Transport returns a RoundTripper that sends each request with base (or
// http.DefaultTransport when base is nil) and checks each response against
// the spec, reporting mismatches with t.Errorf. The caller gets the
// response as base returned it (a gzip-encoded body stays encoded).
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, base: base}
}

type transport struct {
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("openapitest: read response body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err := Validate(req, res.StatusCode, res.Header, body); err != nil {
		tr.t.Errorf("%v", err)
	}
	return res, nil
}

// Check validates a response that a test already holds: req is the request
// that was sent, and body the response body as received (gzip-encoded bodies
// are decoded first). A mismatch is reported with t.Errorf.
func Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := Validate(req, status, header, body); err != nil {
		t.Errorf("%v", err)
	}
}

// Validate returns an error describing how a response departs from the
// spec, or nil when the spec describes it.
func Validate(req *http.Request, status int, header http.Header, body []byte) error {
	v, err := shared()
	if err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("openapi: %s %s answered %d %q: %s\n\tbody: %s",
			req.Method, req.URL.Path, status, header.Get("Content-Type"),
			fmt.Sprintf(format, args...), excerpt(body))
	}

	route, pathParams, err := v.router.FindRoute(req)
	if err != nil {
		var re *routers.RouteError
		if errors.As(err, &re) {
			return fail("the route is not in the spec (%s)", re.Reason)
		}
		return fail("the route is not in the spec: %v", err)
	}

	body, err = decodeContent(header, body)
	if err != nil {
		return fail("%v", err)
	}

	resp := route.Operation.Responses.Status(status)
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return fail("status %d is not documented for %s %s", status, route.Method, route.Path)
	}

	opts := options()
	ct := header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	content := resp.Value.Content
	switch {
	case len(content) == 0:
		if len(body) > 0 {
			return fail("the spec documents no body for status %d, but one was sent", status)
		}
	case content.Get(ct) == nil:
		return fail("content type %q is not documented for status %d (documented: %s)",
			ct, status, strings.Join(keys(content), ", "))
	case !isJSON(mediaType):
		// Only JSON bodies are validated against their schema; for others
		// (the Prometheus text of /metrics) the content type suffices.
		opts.ExcludeResponseBody = true
	}

	// The filter reads the request's query; give it a copy without a body,
	// which response validation never needs.
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: pathParams, Route: route, Options: opts,
		},
		Status:  status,
		Header:  header,
		Options: opts,
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fail("%s", describe(err))
	}
	return nil
}

// decodeContent undoes a gzip Content-Encoding. (http.Transport removes the
// header when it decoded the body itself.)
func decodeContent(header http.Header, body []byte) ([]byte, error) {
	switch enc := strings.ToLower(strings.TrimSpace(header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding is gzip but the body is not: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding is gzip but the body does not decode: %v", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
}

func isJSON(mediaType string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

func keys(c openapi3.Content) []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// describe flattens kin-openapi's errors into one line per problem.
func describe(err error) string {
	var re *openapi3filter.ResponseError
	var me openapi3.MultiError
	var se *openapi3.SchemaError
	switch {
	case errors.As(err, &re):
		if re.Err == nil {
			return re.Reason
		}
		return re.Reason + ": " + describe(re.Err)
	case errors.As(err, &me):
		parts := make([]string, 0, len(me))
		for _, e := range me {
			parts = append(parts, describe(e))
		}
		return "\n\t- " + strings.Join(parts, "\n\t- ")
	case errors.As(err, &se):
		return fmt.Sprintf("at /%s: %s", strings.Join(se.JSONPointer(), "/"), se.Reason)
	}
	return err.Error()
}

// excerpt keeps failure messages readable when a body is large.
func excerpt(body []byte) string {
	const max = 600
	if len(body) > max {
		return string(body[:max]) + fmt.Sprintf("... (%d bytes)", len(body))
	}
	return string(body)
}
