package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/seedc5a8123e/authd/internal/feed"
)

// Native fuzz targets for the request parsers; each seed corpus runs as a
// plain test with go test. To fuzz (the commands .ci/run uses):
//
//	go test -run '^$' -fuzz '^FuzzReadJSON$' -fuzztime 20s ./internal/httpapi/
//	go test -run '^$' -fuzz '^FuzzReadTokenParams$' -fuzztime 20s ./internal/httpapi/
//	go test -run '^$' -fuzz '^FuzzBearerToken$' -fuzztime 20s ./internal/httpapi/
//	go test -run '^$' -fuzz '^FuzzSinceFromQuery$' -fuzztime 20s ./internal/httpapi/
//	go test -run '^$' -fuzz '^FuzzParseSince$' -fuzztime 20s ./internal/feed/

// fuzzBody has every shape of field the JSON endpoints decode into.
type fuzzBody struct {
	Username string            `json:"username"`
	Role     *string           `json:"role"`
	Password *string           `json:"password"`
	Disabled *bool             `json:"disabled"`
	Reason   string            `json:"reason"`
	Limit    int               `json:"limit"`
	Tags     []string          `json:"tags"`
	Meta     map[string]string `json:"meta"`
}

// strings returns every string the body holds, map keys included.
func (b fuzzBody) strings() []string {
	out := append([]string{b.Username, b.Reason}, b.Tags...)
	for _, p := range []*string{b.Role, b.Password} {
		if p != nil {
			out = append(out, *p)
		}
	}
	for k, v := range b.Meta {
		out = append(out, k, v)
	}
	return out
}

func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `{"username":"alice","role":"user","password":"x"}`,
		`{"reason":"a\u0000b"}`, "{\"reason\":\"\xff\"}", `{"reason":"\ud800"}`, `{"reason":"\udc00"}`,
		`{"reason":"\ud83d\ude00"}`, `{"reason":"\\u0000"}`, `{"reason":"\"\u0000"}`, `{"role":"a","role":"b"}`,
		`{"meta":{"a":"1","a":"2"}}`, `{"meta":{"a\u0000":"1"}}`, `{"tags":["a","\u0000"]}`, `{"meta":{"a":"1"},"tags":[]}`,
		`{"disabled":true} {}`, `{"limit":1e999}`, `{"unknown":1}`, `{"username":`, "\ufeff{}",
		`{"tags":[[[[]]]]}`, `{"reason":"\ufffd"}`, `{"reason":"\ud800\ud800"}`, `{"reason":"\ud800\u0041"}`,
		`{"reason":"\ud800\`, `{"reason":"\u12"}`, `{}}`, `{"reason":"x"}]`, `{} `,
	} {
		f.Add([]byte(s), true)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, required bool) {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Body = http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, MaxBodyBytes)
		c := e.NewContext(req, httptest.NewRecorder())
		var v fuzzBody
		err := readJSON(c, &v, required)
		if err != nil {
			var p *problem
			if !errors.As(err, &p) || (p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("error %v (%T) is not a 400 or 413 problem", err, err)
			}
			if p.Status == http.StatusRequestEntityTooLarge && len(body) <= MaxBodyBytes {
				t.Fatalf("413 for %d bytes", len(body))
			}
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if required {
				t.Fatal("an empty body was accepted as required")
			}
			return
		}
		// Accepted: one JSON value, UTF-8 with no unpaired surrogate
		// escapes, no NUL in any decoded string.
		if !json.Valid(body) || !jsonTextIsUTF8(body) {
			t.Fatalf("accepted %q", body)
		}
		for _, s := range v.strings() {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("accepted string %q from %q", s, body)
			}
		}
		// The value survives a round trip through encoding/json.
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back fuzzBody
		if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(normalize(back), normalize(v)) {
			t.Fatalf("round trip of %q: %+v != %+v (%v)", body, back, v, err)
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// normalize makes empty and nil collections equal for the round trip.
func normalize(b fuzzBody) fuzzBody {
	if len(b.Tags) == 0 {
		b.Tags = nil
	}
	if len(b.Meta) == 0 {
		b.Meta = nil
	}
	return b
}

// tokenJSONRawUTF8Checked is whether parseJSONParams (token.go) checks the
// raw body as UTF-8 before decoding; flip it once it does (hardening item
// 13), and the fuzzer holds it to that.
const tokenJSONRawUTF8Checked = true

var fuzzContentTypes = []string{
	"application/x-www-form-urlencoded", "application/json", "", "text/plain",
	"application/x-www-form-urlencoded; charset=utf-8", "application/json;;", "APPLICATION/JSON",
}

func FuzzReadTokenParams(f *testing.F) {
	for i, s := range []string{
		"grant_type=password&username=alice&password=x", "grant_type=password&grant_type=password", "a=%zz", "a=1;b=2",
		"username=a%00b", "username=%ff", "username=" + strings.Repeat("x", 4097), "", "=", "&&", "a", "%",
		`{"grant_type":"password","username":"alice"}`, `{"a":"1","a":"2"}`, `{"a":1}`, `{"a":"\u0000"}`,
		"{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{}`, `[]`, `{"a":"b"}{}`, `{"a":"b"`, `{"a":{"b":"c"}}`,
	} {
		f.Add(uint8(i%2), []byte(s))
	}
	f.Add(uint8(3), []byte("grant_type=password"))
	f.Fuzz(func(t *testing.T, ctSel uint8, body []byte) {
		ct := fuzzContentTypes[int(ctSel)%len(fuzzContentTypes)]
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.Body = http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, MaxBodyBytes)
		if ct != "" {
			req.Header.Set(echo.HeaderContentType, ct)
		}
		p, err := readTokenParams(req)
		if err != nil {
			var oe *oauthError
			var pr *problem
			switch {
			case errors.As(err, &oe):
				if oe.Status != http.StatusBadRequest || oe.Code != "invalid_request" {
					t.Fatalf("oauth error %+v", oe)
				}
			case errors.As(err, &pr):
				if pr.Status != http.StatusUnsupportedMediaType && pr.Status != http.StatusRequestEntityTooLarge {
					t.Fatalf("problem %+v", pr)
				}
			default:
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		for k, v := range p {
			if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0) || len(v) > maxParamBytes {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
		switch mediaTypeOf(ct) {
		case "application/x-www-form-urlencoded":
			q, err := url.ParseQuery(string(body))
			if err != nil || len(q) != len(p) {
				t.Fatalf("accepted form %q: %v, %v", body, q, err)
			}
			for k, vs := range q {
				if len(vs) != 1 || vs[0] != p[k] {
					t.Fatalf("form %q: %q has %q, read %q", body, k, vs, p[k])
				}
			}
		case "application/json":
			var m map[string]string
			if err := json.Unmarshal(body, &m); err != nil || (len(m)+len(p) > 0 && !reflect.DeepEqual(m, map[string]string(p))) {
				t.Fatalf("accepted JSON %q: %v, encoding/json reads %v (%v)", body, p, m, err)
			}
			if tokenJSONRawUTF8Checked && !jsonTextIsUTF8(body) {
				t.Fatalf("accepted JSON that is not UTF-8: %q", body)
			}
		default:
			t.Fatalf("accepted content type %q", ct)
		}
	})
}

func mediaTypeOf(ct string) string {
	mt, _, _ := strings.Cut(strings.ToLower(ct), ";")
	return strings.TrimSpace(mt)
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer abc", "BEARER a.b.c", "Bearer  abc ", "Bearer\tabc", "Bearer", "Bearer ", "Basic abc",
		"Bearer a b", "Bearer abc==", "Bearer ===", "Bearer a=b", "Bearer \x00", "Bearer \xff", "Bearer " + strings.Repeat("a", 4097),
		"Bearer ~+/-._", "Bearerabc", " Bearer abc", "Bearer abc\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused %q but returned %q", h, tok)
			}
			return
		}
		if tok == "" || len(tok) > maxParamBytes || !isB64Token(tok) {
			t.Fatalf("accepted token %q from %q", tok, h)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("accepted byte %q in %q", c, tok)
			}
		}
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.Trim(rest, " \t") != tok {
			t.Fatalf("token %q is not what %q carries", tok, h)
		}
	})
}

func FuzzSinceFromQuery(f *testing.F) {
	for _, s := range []string{
		"", "since=0", "since=1764150000", "since=007", "since=", "since=-1", "since=1;x=2", "since=%zz", "x=%zz&since=1",
		"since=1&since=1", "since=1&since=2", "x=1&since=2", "since=%31", "since=1%00", "since=%EF%BC%91", "since=9999999999999",
		"SINCE=1", "since[]=1", "&", ";", "%", "since=+1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := sinceFromQuery(raw)
		q, qerr := url.ParseQuery(raw)
		if err != nil {
			var p *problem
			if !errors.Is(err, feed.ErrBadSince) && (!errors.As(err, &p) || p.Status != http.StatusBadRequest) {
				t.Fatalf("error %v (%T) for %q", err, err, raw)
			}
			return
		}
		if qerr != nil {
			t.Fatalf("accepted a query string that does not parse: %q (%v)", raw, qerr)
		}
		for k, vs := range q {
			if len(vs) != 1 {
				t.Fatalf("accepted repeated %q in %q", k, raw)
			}
		}
		vs, present := q["since"]
		if !present {
			if got.Unix() != 0 {
				t.Fatalf("absent since is %v for %q", got, raw)
			}
			return
		}
		digits := strings.TrimLeft(vs[0], "0")
		if digits == "" {
			digits = "0"
		}
		if strconv.FormatInt(got.Unix(), 10) != digits || got.Nanosecond() != 0 {
			t.Fatalf("since %q read as %v from %q", vs[0], got.Unix(), raw)
		}
	})
}
