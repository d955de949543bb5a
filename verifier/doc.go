// Package verifier checks authd access tokens offline and keeps a local
// denylist of revoked sessions fed by authd's revocation feed.
package verifier
