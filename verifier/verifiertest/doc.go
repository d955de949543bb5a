// Package verifiertest runs a stand-in for authd on a local httptest server,
// so that a service can test the handlers it protects with package verifier
// without running authd (or its PostgreSQL and Redis).
//
// A [Server] answers everything a [verifier.Verifier] asks authd for, in
// authd's wire format: the RFC 8414 metadata at
// /.well-known/oauth-authorization-server, the JWKS at
// /.well-known/jwks.json, the client credentials grant at POST /token for
// one service credential ([ClientID], [ClientSecret]) and the revocation feed
// at GET /sessions/revoked. It mints access tokens as authd does
// ([Server.Mint]), revokes sessions ([Server.Revoke]), rotates its signing
// key ([Server.RotateKey]) and can take its feed down
// ([Server.SetFeedDown]). [Server.Config] returns a verifier.Config for it,
// with timings that suit tests.
//
// A test of a protected handler looks like this:
//
//	func TestAdminOnly(t *testing.T) {
//		authd := verifiertest.NewServer(t)
//		v, err := verifier.New(context.Background(), authd.Config())
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { _ = v.Close() })
//		h := verifier.Middleware(v, verifier.RequireRole("admin"))(adminHandler)
//
//		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
//		req.Header.Set("Authorization", "Bearer "+authd.Mint(userID, sessionID, "user"))
//		rec := httptest.NewRecorder()
//		h.ServeHTTP(rec, req)
//		if rec.Code != http.StatusForbidden {
//			t.Errorf("role user: %d, want 403", rec.Code)
//		}
//	}
//
// A Server is not authd: it keeps no users, passwords or refresh tokens,
// accepts exactly one service credential, and publishes nothing on Redis,
// so a Verifier learns of revocations by polling (every 20ms with Config).
// It imports nothing of authd's server, so it is as usable outside this
// module as package verifier is.
package verifiertest
