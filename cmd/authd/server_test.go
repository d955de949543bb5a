package main

import (
	"log/slog"
	"net/http"
	"testing"
)

// TestEveryListenerHasTimeouts: the API and the metrics listener share one
// server constructor, and it bounds reading, writing and idling.
func TestEveryListenerHasTimeouts(t *testing.T) {
	s := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts: header %s, read %s, write %s, idle %s: want all set",
			s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}
