package app_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"

	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authdtoken "github.com/seedc5a8123e/authd/internal/token"

	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/config"
	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/verifier"
)

const module = "github.com/seedc5a8123e/authd/"

// graphConstructors are the calls that build a piece of authd's graph; only
// internal/app may make them outside tests.
var graphConstructors = map[string][]string{
	"internal/httpapi":    {"NewServer"},
	"internal/session":    {"NewService"},
	"internal/account":    {"NewService"},
	"internal/auditlog":   {"New"},
	"internal/throttle":   {"New"},
	"internal/token":      {"NewSigner"},
	"internal/feed":       {"NewService"},
	"internal/fleet":      {"New"},
	"internal/metrics":    {"New"},
	"internal/push":       {"NewRedis"},
	"internal/statuslist": {"New", "NewAllocator"},
	"internal/console":    {"New"},
}

// TestGraphIsBuiltInOnePlace: outside internal/app no production file (and
// not the test harness either) constructs a service of the graph, and both
// `authd serve` (with every admin command) and internal/authdtest get theirs
// from app.New. A second hand-kept copy of the wiring fails this test.
func TestGraphIsBuiltInOnePlace(t *testing.T) {
	root := filepath.Join("..", "..")
	callsAppNew := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == ".data") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{} // local name -> module-relative path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			p = strings.TrimPrefix(p, module)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			pkg := imports[x.Name]
			if pkg == "internal/app" && sel.Sel.Name == "New" {
				callsAppNew[dir] = true
			}
			for _, ctor := range graphConstructors[pkg] {
				if sel.Sel.Name == ctor && dir != "internal/app" {
					t.Errorf("%s uses %s.%s: the graph is built only in internal/app", rel, pkg, ctor)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"cmd/authd", "internal/authdtest"} {
		if !callsAppNew[dir] {
			t.Errorf("%s does not call app.New", dir)
		}
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig(t *testing.T, dbURL string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNewOpensAndCloses: from a configuration alone, New opens the
// database, signs with an ephemeral key (and says so), serves the API, and
// Close releases the pool it opened; twice is harmless.
func TestNewOpensAndCloses(t *testing.T) {
	a, err := app.New(context.Background(), testConfig(t, pgtest.URL(t)), app.Deps{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if !a.EphemeralKey || a.Keys.Current().Signing().ID == "" {
		t.Errorf("EphemeralKey = %t, kid %q: want an ephemeral key", a.EphemeralKey, a.Keys.Current().Signing().ID)
	}
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("readyz = %d, want 200", res.StatusCode)
	}
	a.Close()
	a.Close()
	if err := a.DB.Ping(context.Background()); err == nil {
		t.Error("the pool New opened still answers after Close")
	}
}

// TestNewFailsCleanly: a configuration that cannot be built names what is
// wrong and leaves nothing open.
func TestNewFailsCleanly(t *testing.T) {
	cfg := testConfig(t, pgtest.URL(t))
	cfg.SigningKeys = []string{filepath.Join(t.TempDir(), "missing.pem")}
	if _, err := app.New(context.Background(), cfg, app.Deps{Log: discard()}); err == nil ||
		!strings.Contains(err.Error(), "AUTHD_SIGNING_KEYS") {
		t.Errorf("missing key file: err = %v, want one naming AUTHD_SIGNING_KEYS", err)
	}
	if _, err := app.New(context.Background(), cfg, app.Deps{}); err == nil {
		t.Error("no logger: want an error")
	}
	if _, err := os.Stat(cfg.SigningKeys[0]); err == nil {
		t.Error("New created the missing key file")
	}
}

// TestConsoleSwitch: the console is served by default and not at all with
// AUTHD_CONSOLE=off.
func TestConsoleSwitch(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := testConfig(t, pgtest.URL(t))
		cfg.Console = on
		a, err := app.New(context.Background(), cfg, app.Deps{Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler)
		res, err := http.Get(srv.URL + "/console/login")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		srv.Close()
		a.Close()
		if want := map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[on]; res.StatusCode != want || (a.Console != nil) != on {
			t.Errorf("console %t: GET /console/login = %d, want %d; App.Console set = %t", on, res.StatusCode, want, a.Console != nil)
		}
	}
}

// TestKeyRingRetiresNoLiveKey: the keyring's timings, from the
// configuration, keep every key published for as long as anything it signed
// verifies. The worst case: a replica whose clock lags by the skew signs
// with the old key until SignAt + skew; the token's exp is that plus its
// lifetime, and a verifier accepts it for its leeway more; a replica whose
// clock leads withdraws the key at RetireAt - skew. And a new key signs only
// after every JWKS cached before it appeared has expired, across the
// replicas' re-read interval and the skew both ways.
func TestKeyRingRetiresNoLiveKey(t *testing.T) {
	for _, statusList := range []bool{false, true} {
		cfg := testConfig(t, pgtest.URL(t))
		cfg.KeyEncryptionKey, _ = keys.NewKEK()
		cfg.AccessTTL, cfg.StatusList, cfg.StatusListTTL = 10*time.Minute, statusList, time.Hour
		a, err := app.New(context.Background(), cfg, app.Deps{Log: discard(), CreateFirstKey: true})
		if err != nil {
			t.Fatal(err)
		}
		kc, err := a.KeyRingConfig()
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		lifetime := cfg.AccessTTL
		if statusList {
			lifetime = statuslist.ValidityFor(cfg.StatusListTTL)
		}
		if need := lifetime + verifier.DefaultLeeway + 2*authdtoken.MaxClockSkew; kc.RetireAfter < need {
			t.Errorf("status lists %t: RetireAfter %s, need at least %s", statusList, kc.RetireAfter, need)
		}
		if kc.Skew < authdtoken.MaxClockSkew || !kc.CheckDBClock {
			t.Errorf("skew %s, clock check %t: want authdtoken.MaxClockSkew, checked against the database", kc.Skew, kc.CheckDBClock)
		}
		if lead := keyring.Lead(keyring.DefaultInterval, kc.Skew); lead < keys.JWKSMaxAge+keyring.DefaultInterval+2*authdtoken.MaxClockSkew {
			t.Errorf("lead %s is too short", lead)
		}
	}
}
