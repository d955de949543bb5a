package verifier

import "testing"

func TestCheckEndpoint(t *testing.T) {
	for _, tc := range []struct{ issuerURL, endpoint string }{
		{"http://authd.test", "/token"},
		{"http://authd.test", "ftp://authd.test/jwks"},
		{"http://authd.test", "http:///sessions/revoked"},
		{"https://authd.test", "http://authd.test/sessions/revoked"}, // no downgrade
	} {
		if err := checkEndpoint(tc.issuerURL, tc.endpoint); err == nil {
			t.Errorf("checkEndpoint(%q, %q) accepted it", tc.issuerURL, tc.endpoint)
		}
	}
	for _, ok := range []struct{ issuerURL, endpoint string }{
		{"http://authd.test", "http://authd.test/token"},
		{"http://authd.test", "https://auth.example.com/token"},
		{"https://authd.test", "https://other.example/jwks"},
	} {
		if err := checkEndpoint(ok.issuerURL, ok.endpoint); err != nil {
			t.Errorf("checkEndpoint(%q, %q): %v", ok.issuerURL, ok.endpoint, err)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct{ issuerURL, endpoint, want string }{
		{"http://authd:8080", "https://auth.example.com/token", "http://authd:8080/token"},
		{"https://authd.internal", "https://evil.example/.well-known/jwks.json", "https://authd.internal/.well-known/jwks.json"},
		{"http://authd:8080", "https://auth.example.com/sessions/revoked?x=1", "http://authd:8080/sessions/revoked?x=1"},
	} {
		if got := sameOrigin(tc.issuerURL, tc.endpoint); got != tc.want {
			t.Errorf("sameOrigin(%q, %q) = %q, want %q", tc.issuerURL, tc.endpoint, got, tc.want)
		}
	}
}
