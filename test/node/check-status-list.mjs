// authd's IETF Token Status Lists as an independent implementation reads
// them: @sd-jwt/jwt-status-list (draft-ietf-oauth-status-list) takes each
// access token's status claim and decodes the list; jose verifies the
// Status List Token (typ statuslist+jwt, its sub the token's uri, exp)
// against authd's JWKS. internal/e2e/node_test.go runs it against a live
// authd and passes, in the environment:
//
//   AUTHD_URL     the test server, on the loopback (http://127.0.0.1:PORT)
//   AUTHD_ISSUER  authd's issuer: every URL under it is fetched from AUTHD_URL
//   AUTHD_CASES   a JSON array of {name, token, want: "valid" | "revoked"}
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list'
import { createLocalJWKSet, jwtVerify } from 'jose'

const { AUTHD_URL, AUTHD_ISSUER, AUTHD_CASES } = process.env
if (!AUTHD_URL || !AUTHD_ISSUER || !AUTHD_CASES) {
  console.error('check-status-list.mjs: set AUTHD_URL, AUTHD_ISSUER and AUTHD_CASES; internal/e2e/node_test.go does')
  process.exit(2)
}
const server = new URL(AUTHD_URL)
if (!['127.0.0.1', 'localhost', '[::1]'].includes(server.hostname)) {
  console.error(`check-status-list.mjs: AUTHD_URL ${AUTHD_URL} is not on the loopback`)
  process.exit(2)
}
const issuer = new URL(AUTHD_ISSUER)

// fetchVia sends a request for the issuer's origin to the test server and
// refuses any other, so nothing leaves the loopback.
async function fetchVia(url, init) {
  const u = new URL(url)
  if (u.origin !== issuer.origin) {
    throw new Error(`refusing to fetch ${u.href}: not under the issuer ${issuer.origin}`)
  }
  const res = await fetch(new URL(u.pathname + u.search, server), init)
  assert.equal(res.status, 200, `${u.href}: HTTP ${res.status}`)
  return res
}

const cases = JSON.parse(AUTHD_CASES)
assert.ok(Array.isArray(cases) && cases.length > 0, 'AUTHD_CASES must be a non-empty JSON array')

// The key set as the metadata names it.
const metadata = await (await fetchVia(new URL('/.well-known/oauth-authorization-server', issuer))).json()
const jwks = createLocalJWKSet(await (await fetchVia(metadata.jwks_uri)).json())

test('the metadata names the aggregation, which lists every list', async () => {
  assert.ok(metadata.status_list_aggregation_endpoint.startsWith(AUTHD_ISSUER))
  const agg = await (await fetchVia(metadata.status_list_aggregation_endpoint)).json()
  assert.ok(Array.isArray(agg.status_lists) && agg.status_lists.length > 0)
})

for (const c of cases) {
  test(c.name, async () => {
    const ref = getStatusListFromJWT(c.token) // the access token's status.status_list
    assert.ok(Number.isInteger(ref.idx) && ref.idx >= 0, `idx ${ref.idx}`)
    const res = await fetchVia(ref.uri, { headers: { accept: 'application/statuslist+jwt' } })
    assert.equal(res.headers.get('content-type'), 'application/statuslist+jwt')
    const jwt = await res.text()
    const { payload, protectedHeader } = await jwtVerify(jwt, jwks, {
      typ: 'statuslist+jwt',
      subject: ref.uri,
      requiredClaims: ['iat', 'exp', 'sub'],
    })
    assert.ok(protectedHeader.kid, 'kid in the header')
    assert.ok(payload.ttl > 0, `ttl ${payload.ttl}`)
    assert.equal(payload.status_list.bits, 1)
    const status = getListFromStatusListJWT(jwt).getStatus(ref.idx)
    assert.equal(status, c.want === 'revoked' ? 1 : 0, `status ${status} at ${ref.idx}, want ${c.want}`)
  })
}
