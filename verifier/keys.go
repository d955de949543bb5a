package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Algorithms a Verifier accepts; anything else is refused before any key is
// looked up (RFC 8725 section 3.1).
const (
	algEdDSA = "EdDSA"
	algES256 = "ES256"
)

// maxJWKSBytes bounds a JWKS document; authd's is a few hundred bytes.
const maxJWKSBytes = 1 << 20

// jwksFetchTimeout bounds one JWKS fetch. The fetch is detached from the
// request that triggered it (see refresh), so it needs a bound of its own;
// Verify callers waiting on it still give up with their own context.
const jwksFetchTimeout = 10 * time.Second

// The JWKS lifetime when authd's answer names none (its Cache-Control
// max-age), and the bounds put on what it names: a verifier never refetches
// more often than every minJWKSMaxAge nor keeps a key set longer than
// maxJWKSMaxAge.
const (
	defaultJWKSMaxAge = 5 * time.Minute
	minJWKSMaxAge     = 10 * time.Second
	maxJWKSMaxAge     = 24 * time.Hour
)

// publicKey is one usable key of the JWKS. alg is derived from kty/crv, never
// from the document's optional "alg" member alone, so a key can only ever
// verify the one algorithm its type supports.
type publicKey struct {
	alg string
	key crypto.PublicKey
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// keyCache holds the JWKS. An unknown kid triggers a refetch shared by every
// concurrent caller and at most one per minInterval; the poll loop also
// refetches before the set is older than its max-age (due), so a key authd
// publishes ahead of its use is known before the first token names it.
type keyCache struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	log         *slog.Logger
	clock       Clock // Config.Clock: the set's age, as the tokens' time

	mu        sync.RWMutex
	keys      map[string]publicKey
	fetchedAt time.Time     // clock time of the last good fetch
	maxAge    time.Duration // the last good answer's max-age, less its Age
	fetches   uint64        // fetches attempted
	retryAt   time.Time     // clock time before which a failed refetch is not retried

	refetching atomic.Bool // a max-age refetch runs (refetchAhead)

	fetchMu   sync.Mutex
	inflight  chan struct{} // closed when the running fetch ends; nil if none
	lastFetch time.Time     // start of the last fetch, wall clock
	lastErr   error
}

func (c *keyCache) lookup(kid string) (publicKey, bool) {
	c.mu.RLock()
	k, ok := c.keys[kid]
	c.mu.RUnlock()
	return k, ok
}

// get returns the key kid, refetching the JWKS once if it is unknown and the
// rate limit allows.
func (c *keyCache) get(ctx context.Context, kid string) (publicKey, error) {
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	if err := c.refresh(ctx, false); err != nil {
		return publicKey{}, err
	}
	if k, ok := c.lookup(kid); ok {
		return k, nil
	}
	return publicKey{}, fmt.Errorf("%w: no published key has kid %q", ErrSignature, kid)
}

// refresh fetches the JWKS unless the last fetch started less than
// minInterval ago. Concurrent callers share one fetch and its result. force,
// for New's initial load, skips the rate limit and lets ctx end the fetch.
func (c *keyCache) refresh(ctx context.Context, force bool) error {
	c.fetchMu.Lock()
	if ch := c.inflight; ch != nil {
		c.fetchMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.fetchMu.Lock()
		err := c.lastErr
		c.fetchMu.Unlock()
		return err
	}
	if !force && !c.lastFetch.IsZero() && time.Since(c.lastFetch) < c.minInterval {
		c.fetchMu.Unlock()
		return nil // rate limited: the caller sees the key as unknown
	}
	ch := make(chan struct{})
	c.inflight = ch
	c.lastFetch = time.Now()
	c.fetchMu.Unlock()

	// The fetch is detached from the caller's cancellation so that one
	// impatient request does not fail the fetch every waiter shares; it is
	// bounded by its own timeout instead. A forced fetch is New's initial
	// load, which nothing else waits on and which must end with New's
	// context.
	base := context.WithoutCancel(ctx)
	if force {
		base = ctx
	}
	fctx, cancel := context.WithTimeout(base, jwksFetchTimeout)
	keys, maxAge, err := c.fetch(fctx)
	cancel()
	c.mu.Lock()
	c.fetches++
	if err == nil {
		c.keys, c.fetchedAt, c.maxAge = keys, c.clock.Now(), maxAge
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("verifier: JWKS fetch failed", "url", c.url, "err", err)
	}

	c.fetchMu.Lock()
	c.lastErr = err
	c.inflight = nil
	c.fetchMu.Unlock()
	close(ch)
	return err
}

// due reports whether the set will be older than its max-age within d, so
// a caller that looks every d refetches it in time; not while a failed
// refetch waits for its retry.
func (c *keyCache) due(d time.Duration) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	now := c.clock.Now()
	return !c.fetchedAt.IsZero() && !now.Before(c.retryAt) && now.Sub(c.fetchedAt)+d >= c.maxAge
}

// refetchAhead refetches the set in the background unless a refetch runs
// already, so a slow or unreachable JWKS never holds up the feed poll that
// asked; after a failure it is not due again for a tenth of the max-age
// (at least minJWKSMaxAge), so an outage is not met with a fetch per poll.
// It returns at once; wg tracks the fetch, which ends with ctx.
func (c *keyCache) refetchAhead(ctx context.Context, wg *sync.WaitGroup) {
	if !c.refetching.CompareAndSwap(false, true) {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.refetching.Store(false)
		if err := c.refresh(ctx, true); err != nil {
			c.mu.Lock()
			c.retryAt = c.clock.Now().Add(max(c.maxAge/10, minJWKSMaxAge))
			c.mu.Unlock()
		}
	}()
}

// stats is when the set was last fetched and how many fetches were tried.
func (c *keyCache) stats() (time.Time, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.fetchedAt, c.fetches
}

func (c *keyCache) fetch(ctx context.Context) (map[string]publicKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("jwks: GET %s: status %d", c.url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, errors.New("jwks: document too large")
	}
	keys, err := parseJWKS(body, c.log)
	// A shared cache in front answers with the Age of its copy (RFC 9111
	// section 5.1): the set is that much older already.
	age := jwksMaxAge(res.Header.Get("Cache-Control"))
	if a, aerr := strconv.ParseInt(res.Header.Get("Age"), 10, 64); aerr == nil && a > 0 {
		age = max(age-time.Duration(min(a, int64(maxJWKSMaxAge/time.Second)))*time.Second, minJWKSMaxAge)
	}
	return keys, age, err
}

// jwksMaxAge is the max-age directive of a Cache-Control value (RFC 9111
// section 5.2.2.1), defaultJWKSMaxAge without one, within the bounds.
func jwksMaxAge(cc string) time.Duration {
	age := defaultJWKSMaxAge
	for _, d := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		if !strings.EqualFold(name, "max-age") {
			continue
		}
		if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
			age = time.Duration(min(n, int64(maxJWKSMaxAge/time.Second))) * time.Second
		}
		break
	}
	return min(max(age, minJWKSMaxAge), maxJWKSMaxAge)
}

// parseJWKS keeps every Ed25519 and P-256 signing key and skips (with a log
// line) anything else, so one odd key does not hide the good ones.
func parseJWKS(body []byte, log *slog.Logger) (map[string]publicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	out := make(map[string]publicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		pk, err := k.public()
		if err != nil {
			log.Warn("verifier: skipping JWKS key", "kid", k.Kid, "err", err)
			continue
		}
		out[k.Kid] = pk
	}
	if len(out) == 0 {
		return nil, errors.New("jwks: no usable key")
	}
	return out, nil
}

var b64 = base64.RawURLEncoding

func (k jwk) public() (publicKey, error) {
	if k.Kid == "" {
		return publicKey{}, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	switch {
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		if k.Alg != "" && k.Alg != algEdDSA {
			return publicKey{}, fmt.Errorf("alg %q does not match an Ed25519 key", k.Alg)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return publicKey{}, errors.New("bad Ed25519 x")
		}
		return publicKey{alg: algEdDSA, key: ed25519.PublicKey(x)}, nil
	case k.Kty == "EC" && k.Crv == "P-256":
		if k.Alg != "" && k.Alg != algES256 {
			return publicKey{}, fmt.Errorf("alg %q does not match a P-256 key", k.Alg)
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("bad P-256 coordinates")
		}
		// The parser rejects points not on the curve (invalid-curve attacks).
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return publicKey{}, fmt.Errorf("P-256 point: %w", err)
		}
		return publicKey{alg: algES256, key: pub}, nil
	}
	return publicKey{}, fmt.Errorf("unsupported key kty=%q crv=%q", k.Kty, k.Crv)
}
