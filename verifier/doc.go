// Package verifier checks authd access tokens offline and keeps a local
// denylist of revoked sessions fed by authd's revocation feed.
//
// # What a Verifier does
//
// [New] needs little more than authd's address ([Config.IssuerURL]) and a
// service credential. It first reads authd's RFC 8414 authorization server
// metadata at IssuerURL + [DiscoveryPath] and from then on uses the paths of
// the token endpoint, JWKS URI and revocation feed the document names, on
// IssuerURL's own scheme and host (authd builds those URLs from its public
// AUTHD_ISSUER, which an internal service may not reach, and a document must
// never redirect the client secret elsewhere). The document's issuer becomes
// the expected "iss" unless [Config.Issuer] is set, in which case a document
// naming another issuer makes New fail (RFC 8414 section 3.3). An authd that
// answers that path with 404 is read at its fixed paths under IssuerURL,
// with IssuerURL as the expected issuer.
//
// New then fetches authd's JWKS, exchanges a service credential for a token
// (OAuth 2.0 client credentials) and loads the full revocation snapshot from
// GET /sessions/revoked before it returns, so a fresh Verifier never accepts a
// token whose session was revoked before it started. It then polls the feed
// every [Config.PollInterval] with the cursor of the previous answer and, when
// [Config.RedisURL] is set, also listens on the Redis channel [PushChannel],
// so a logout reaches it in milliseconds instead of a poll interval. Both
// sources feed one in-memory denylist; an entry is forgotten once every token
// of its session has expired.
//
// [Verifier.Verify] checks a token with no network round trip: its form
// (the compact serialization with nothing around or inside it, no "crit"
// header, numeric dates as JSON numbers, no claim given twice: exactly what
// authd's own bearer check accepts), signature (EdDSA or ES256 only, the
// algorithm fixed by the key, never by the token), typ "at+jwt", issuer,
// audience, exp/nbf/iat with a small leeway, and the denylist. A token naming an unknown key id triggers one shared, rate-limited
// JWKS refetch, so key rotation needs no restart.
//
// # When the feed is unreachable
//
// The last good denylist is kept and polling retries with exponential
// backoff (capped at the poll interval). Once the last successful poll is
// older than [Config.MaxStaleness], Verify fails closed with [ErrStale]: the
// Verifier can no longer vouch that a session was not revoked. Setting
// [Config.FailOpen] keeps accepting tokens instead, trading revocation for
// availability; see its documentation for the risk.
//
// # HTTP
//
// [Middleware] protects a net/http handler, answering 401 with an RFC 6750
// WWW-Authenticate challenge; the package verifierecho adapts it to Echo.
//
// # Testing a service
//
// The package verifiertest runs a stand-in for authd on an httptest server:
// it mints tokens, revokes sessions, rotates keys and takes its feed down on
// request, so a service's tests exercise its protected handlers through a
// real Verifier without running authd. The examples here use it.
package verifier
