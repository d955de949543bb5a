package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/seedc5a8123e/authd/internal/authdtest"
	"github.com/seedc5a8123e/authd/internal/httpapi"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns the lines written so far, decoded, and forgets them.
func (b *syncBuffer) take(t *testing.T) (lines []map[string]any, raw string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	raw = b.buf.String()
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	b.buf.Reset()
	return lines, raw
}

// loggedServer is NewServer, as authd serve builds it, on env's services,
// logging JSON at debug level into the returned buffer.
func loggedServer(t *testing.T) (*httptest.Server, *syncBuffer) {
	t.Helper()
	env := authdtest.Start(t, authdtest.Options{})
	logs := &syncBuffer{}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		DB: env.DB, Sessions: env.Sessions, Accounts: env.Accounts, Feed: env.App.Feed, Keys: env.Keys,
		Log:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		IssuerURL: authdtest.Issuer,
	}))
	t.Cleanup(srv.Close)
	return srv, logs
}

var generatedID = regexp.MustCompile(`^[A-Za-z0-9._-]{16,128}$`)

// Item 6: a client's X-Request-Id is kept only when it is 1 to 128
// characters of [A-Za-z0-9._-]; any other is replaced with a random one,
// which is what the response and every log line carry.
func TestRequestIDRule(t *testing.T) {
	srv, logs := loggedServer(t)
	cases := []struct {
		name, id string
		keep     bool
	}{
		{"Simple", "abc123", true},
		{"AllowedPunctuation", "A-b_c.9", true},
		{"Max", strings.Repeat("x", 128), true},
		{"Absent", "", false},
		{"TooLong", strings.Repeat("x", 129), false},
		{"Huge", strings.Repeat("y", 60<<10), false},
		{"Space", "a b", false},
		{"Tab", "a\tb", false},
		{"Slash", "a/b", false},
		{"Markup", "<script>", false},
		{"Semicolon", "a;b", false},
		{"Percent", "%41", false},
		{"Quote", `a"b`, false},
		{"NonASCII", "ünïcödé", false},
		{"LatinOneBytes", "\xff\xfe", false},
		{"LogInjection", `x","level":"ERROR`, false},
	}
	for _, tc := range cases {
		for _, target := range []struct{ method, path string }{
			{http.MethodGet, "/healthz"},                                // 200
			{http.MethodGet, "/nowhere"},                                // 404 through the error handler
			{http.MethodPost, "/logout"},                                // 401 from the auth middleware
			{http.MethodPost, "/token"},                                 // 415, the RFC 6749 error writer
			{http.MethodGet, "/sessions/revoked?since=%zz"},             // 401 before the query is read
			{http.MethodGet, "/.well-known/oauth-authorization-server"}, // 200
		} {
			t.Run(tc.name+target.path, func(t *testing.T) {
				req, _ := http.NewRequest(target.method, srv.URL+target.path, nil)
				if tc.id != "" {
					req.Header.Set("X-Request-Id", tc.id)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode >= 500 {
					t.Fatalf("status %d", res.StatusCode)
				}
				got := res.Header.Values("X-Request-Id")
				if len(got) != 1 {
					t.Fatalf("X-Request-Id headers %q, want one", got)
				}
				switch {
				case tc.keep && got[0] != tc.id:
					t.Fatalf("valid id %q answered as %q", tc.id, got[0])
				case !tc.keep && (got[0] == tc.id || !generatedID.MatchString(got[0])):
					t.Fatalf("id %.40q answered as %.40q, want a fresh one", tc.id, got[0])
				}
				lines, raw := logs.take(t)
				requests := 0
				for _, l := range lines {
					if l["msg"] != "request" {
						continue
					}
					requests++
					if l["request_id"] != got[0] {
						t.Errorf("logged request_id %.40q, answered %q", l["request_id"], got[0])
					}
					if _, ok := l["latency_ms"].(float64); !ok {
						t.Errorf("latency_ms = %#v, want a number of milliseconds", l["latency_ms"])
					}
					if _, ok := l["latency"]; ok {
						t.Errorf("the unitless latency field is still logged: %v", l)
					}
				}
				if requests != 1 {
					t.Fatalf("%d request lines in %s", requests, raw)
				}
				if !tc.keep && tc.id != "" && strings.Contains(raw, tc.id) {
					t.Fatalf("the refused id reached the log: %.200s", raw)
				}
			})
		}
	}
}

// Two requests without an id get different ones.
func TestGeneratedRequestIDsDiffer(t *testing.T) {
	srv, _ := loggedServer(t)
	seen := map[string]bool{}
	for range 50 {
		res, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		id := res.Header.Get("X-Request-Id")
		if seen[id] || !generatedID.MatchString(id) {
			t.Fatalf("generated id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
