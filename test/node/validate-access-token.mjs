// authd's access tokens as an independent, strict resource server sees them:
// oauth4webapi's validateJwtAccessToken (RFC 9068: typ at+jwt; iss, exp,
// aud, sub, iat, jti and client_id present; the signature against the
// issuer's JWKS). internal/e2e/node_test.go runs it against a live authd and
// passes, in the environment:
//
//   AUTHD_URL     the test server, on the loopback (http://127.0.0.1:PORT)
//   AUTHD_ISSUER  authd's issuer (http://authd.test): discovery and every
//                 URL the metadata names are sent to AUTHD_URL instead, as a
//                 DNS entry would, and iss is checked against it
//   AUTHD_CASES   a JSON array of {name, token, audience, want: "valid" |
//                 "invalid", claims (valid: members the claims must have),
//                 error (invalid: text the error message must contain)}
//
// Run by hand: cd test/node && npm ci, then the Go test (make test).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as oauth from 'oauth4webapi'

const { AUTHD_URL, AUTHD_ISSUER, AUTHD_CASES } = process.env
if (!AUTHD_URL || !AUTHD_ISSUER || !AUTHD_CASES) {
  console.error('validate-access-token.mjs: set AUTHD_URL, AUTHD_ISSUER and AUTHD_CASES; internal/e2e/node_test.go does')
  process.exit(2)
}

const server = new URL(AUTHD_URL)
if (!['127.0.0.1', 'localhost', '[::1]'].includes(server.hostname)) {
  console.error(`validate-access-token.mjs: AUTHD_URL ${AUTHD_URL} is not on the loopback`)
  process.exit(2)
}
const issuer = new URL(AUTHD_ISSUER)

// fetchVia sends a request for the issuer's origin to the test server and
// refuses any other, so nothing leaves the loopback.
function fetchVia(url, init) {
  const u = new URL(url)
  if (u.origin !== issuer.origin) {
    throw new Error(`refusing to fetch ${u.href}: not under the issuer ${issuer.origin}`)
  }
  return fetch(new URL(u.pathname + u.search, server), init)
}

const http = { [oauth.customFetch]: fetchVia, [oauth.allowInsecureRequests]: true }

const cases = JSON.parse(AUTHD_CASES)
assert.ok(Array.isArray(cases) && cases.length > 0, 'AUTHD_CASES must be a non-empty JSON array')

// The metadata as authd publishes it (RFC 8414), its issuer checked.
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...http }),
)

test('the metadata names the issuer and its signing algorithms', () => {
  assert.equal(as.issuer, AUTHD_ISSUER)
  assert.ok(as.jwks_uri.startsWith(AUTHD_ISSUER), as.jwks_uri)
  assert.ok(as.access_token_signing_alg_values_supported.length > 0)
})

for (const c of cases) {
  test(c.name, async () => {
    const request = new Request(new URL('/resource', server), {
      headers: { authorization: `Bearer ${c.token}` },
    })
    const validate = () =>
      oauth.validateJwtAccessToken(as, request, c.audience, {
        ...http,
        signingAlgorithms: as.access_token_signing_alg_values_supported,
      })
    if (c.want === 'valid') {
      const claims = await validate()
      for (const [k, v] of Object.entries(c.claims ?? {})) {
        assert.deepEqual(claims[k], v, `claim ${k}`)
      }
      console.log(`${c.name}: valid, client_id ${claims.client_id}, sub ${claims.sub}, role ${claims.role}`)
      return
    }
    assert.equal(c.want, 'invalid', `case ${c.name}: want must be valid or invalid`)
    await assert.rejects(validate, (err) => {
      assert.ok(err instanceof Error, `not an Error: ${err}`)
      assert.ok(err.message.includes(c.error), `error ${JSON.stringify(err.message)} does not mention ${c.error}`)
      console.log(`${c.name}: rejected: ${err.message}`)
      return true
    })
  })
}
