// Package redact keeps the secrets of connection URLs out of logs and error
// text. It is a leaf, so that both the configuration (which prints URLs) and
// the storage layer (which scrubs a driver's error text) can use it.
package redact

import (
	"net/url"
	"strings"
)

// URL masks the secrets of a connection URL: the password of its user-info
// and every query parameter that carries one (pgx and libpq also accept
// ?password=, and sslpassword=).
func URL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// URLSecrets returns the secrets URL masks, decoded and as they may be
// escaped inside a URL, so that error text from libraries that echo a URL can
// be scrubbed.
func URLSecrets(s string) []string {
	var out []string
	for _, secret := range urlSecrets(s) {
		out = append(out, secret)
		for _, esc := range []string{url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("", secret).String()[1:]} {
			if esc != secret {
				out = append(out, esc)
			}
		}
	}
	return out
}

func urlSecrets(s string) []string {
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	for k, vs := range u.Query() {
		if strings.Contains(strings.ToLower(k), "password") {
			for _, v := range vs {
				if v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}
