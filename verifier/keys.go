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
	"sync"
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
// concurrent caller and at most one per minInterval.
type keyCache struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	log         *slog.Logger

	mu   sync.RWMutex
	keys map[string]publicKey

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
	keys, err := c.fetch(fctx)
	cancel()
	if err == nil {
		c.mu.Lock()
		c.keys = keys
		c.mu.Unlock()
	} else {
		c.log.Warn("verifier: JWKS fetch failed", "url", c.url, "err", err)
	}

	c.fetchMu.Lock()
	c.lastErr = err
	c.inflight = nil
	c.fetchMu.Unlock()
	close(ch)
	return err
}

func (c *keyCache) fetch(ctx context.Context) (map[string]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: GET %s: status %d", c.url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("jwks: document too large")
	}
	return parseJWKS(body, c.log)
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
