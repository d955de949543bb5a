package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/argon2"
)

// The floors: the least work each measured figure could cost, measured in
// the same run, at the same concurrency, on the same database.
const (
	floorUpdate   = "floor:update"
	floorArgon2   = "floor:argon2id"
	floorDelta    = "floor:feed-query-delta"
	floorSnapshot = "floor:feed-query-snapshot"
	floorJWT      = "floor:golang-jwt"
)

// argon2Params are authd's password hashing parameters (internal/password's
// Default, OWASP: m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key);
// TestArgon2ParamsAreAuthds keeps them in step.
var argon2Params = struct {
	Memory, Time  uint32
	Threads       uint8
	SaltLen, Keys uint32
}{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, Keys: 32}

// feedQuery is authd's feed query (internal/postgres RevokedSince) without
// its column aliases.
const feedQuery = `SELECT last_jti::text, id::text, extract(epoch FROM access_exp)::bigint FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND access_exp > $2 ORDER BY revoked_at, id`

// feedHoldback is authd's cursor hold-back (internal/feed Holdback): a
// verifier's delta poll asks for since = about 15 s ago.
const feedHoldback = 15 * time.Second

// openFloorPool connects to the database the floors run on, with
// synchronous_commit on whatever the server's default, so the UPDATE floor
// is a durable commit.
func openFloorPool(ctx context.Context, dbURL string, concurrency int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	cfg.MaxConns = int32(concurrency) + 1 // one spare for the bookkeeping queries
	cfg.MinConns = 0
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "authbench"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	return pool, nil
}

// updateFloor creates a scratch table with one row per worker and returns
// a loop of "UPDATE … WHERE id = $1" in autocommit (one durable commit per
// operation, each worker on its own row, as each refresh or logout writes
// its own session); its cleanup drops the table.
func (b *bench) updateFloor(ctx context.Context) (*spec, error) {
	tbl := pgx.Identifier{"authbench_floor_" + b.runID}.Sanitize()
	c := b.o.concurrency
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := b.pool.Exec(dctx, `DROP TABLE IF EXISTS `+tbl); err != nil {
			b.logf("floor: drop scratch table %s: %v (drop it by hand)", tbl, err)
		}
	}
	if _, err := b.pool.Exec(setup, `CREATE TABLE `+tbl+` (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0, at timestamptz)`); err != nil {
		return nil, fmt.Errorf("floor: create scratch table: %w", err)
	}
	if _, err := b.pool.Exec(setup, `INSERT INTO `+tbl+` (id) SELECT generate_series(0, $1::int - 1)`, c); err != nil {
		drop()
		return nil, fmt.Errorf("floor: fill scratch table: %w", err)
	}
	q := `UPDATE ` + tbl + ` SET n = n + 1, at = now() WHERE id = $1`
	return &spec{
		name: floorUpdate, what: "durable UPDATE … WHERE id = $1, autocommit, own row per worker (pgx, scratch table)",
		cfg: b.floorLoop(c), pgSide: true, cleanup: drop,
		fn: func(ctx context.Context, w int) (string, error) {
			octx, cancel := context.WithTimeout(ctx, b.o.opTimeout)
			defer cancel()
			tag, err := b.pool.Exec(octx, q, w)
			if err == nil && tag.RowsAffected() != 1 {
				err = &badResponseError{fmt.Sprintf("updated %d rows", tag.RowsAffected())}
			}
			return "", err
		},
	}, nil
}

// argon2Floor hashes with authd's parameters on every core (one goroutine
// per CPU, whatever -c), which is the most logins the machine could check.
func (b *bench) argon2Floor() *spec {
	salt := make([]byte, argon2Params.SaltLen)
	_, _ = rand.Read(salt)
	pw := []byte("authbench-floor-password")
	p := argon2Params
	cores := runtime.NumCPU()
	return &spec{
		name: floorArgon2, what: fmt.Sprintf("bare argon2id m=%d KiB t=%d p=%d on all %d cores", p.Memory, p.Time, p.Threads, cores),
		cfg: b.floorLoop(cores), clientSide: true,
		fn: func(context.Context, int) (string, error) {
			_ = argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.Keys)
			return "", nil
		},
	}
}

// feedFloor runs authd's feed query bare: a delta with since = now - 15 s
// (what a polling verifier asks) or the full snapshot (since = 0).
func (b *bench) feedFloor(snapshot bool) *spec {
	name, what := floorDelta, "bare feed query, since = now - 15 s"
	if snapshot {
		name, what = floorSnapshot, "bare feed query, since = 0 (full snapshot)"
	}
	var rows atomic.Int64
	return &spec{
		name: name, what: what, cfg: b.floorLoop(b.o.concurrency), pgSide: true,
		after: func(r *result) { r.Notes = append(r.Notes, fmt.Sprintf("%d rows per query (the last)", rows.Load())) },
		fn: func(ctx context.Context, w int) (string, error) {
			octx, cancel := context.WithTimeout(ctx, b.o.opTimeout)
			defer cancel()
			now := time.Now()
			since := time.Unix(0, 0)
			if !snapshot {
				since = time.Unix(now.Add(-feedHoldback).Unix(), 0)
			}
			res, _ := b.pool.Query(octx, feedQuery, since, now)
			var jti, sid string
			var exp int64
			n := 0
			_, err := pgx.ForEachRow(res, []any{&jti, &sid, &exp}, func() error { n++; return nil })
			rows.Store(int64(n))
			return "", err
		},
	}
}

// jwtFloor is bare golang-jwt parse-and-verify of tok with the checks a
// verifier makes (pinned algorithm, iss, aud, exp required) and no more:
// no typ or kid handling, no denylist.
func (b *bench) jwtFloor(ctx context.Context, tok string) (*spec, error) {
	kid, err := tokenKid(tok)
	if err != nil {
		return nil, err
	}
	key, alg, err := b.api.publicKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	iss, err := b.api.issuer(ctx)
	if err != nil {
		return nil, err
	}
	if iss == "" {
		iss = b.o.url
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(iss),
		jwt.WithAudience(b.o.audience), jwt.WithExpirationRequired())
	type claims struct {
		jwt.RegisteredClaims
		SID  string `json:"sid"`
		Role string `json:"role"`
	}
	keyFn := func(*jwt.Token) (any, error) { return key, nil }
	return &spec{
		name: floorJWT, what: "bare golang-jwt " + alg + " parse and verify of the same token",
		cfg: b.floorLoop(b.o.concurrency), clientSide: true,
		fn: func(context.Context, int) (string, error) {
			var c claims
			_, err := p.ParseWithClaims(tok, &c, keyFn)
			return "", err
		},
	}, nil
}

// floorLoop is the loop configuration of a floor.
func (b *bench) floorLoop(concurrency int) loopConfig {
	return loopConfig{
		Concurrency: concurrency, Warmup: b.o.warmup, Duration: b.o.floorDuration, MaxOps: b.o.maxOps,
	}
}
