package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/seedc5a8123e/authd/verifier"
)

// percentile is the nearest-rank percentile (p in (0, 100]) of sorted, an
// ascending slice: the smallest sample with at least p% of the samples at or
// below it. It is 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// rank = ceil(p/100 * n), computed in integers so 50% of 100 is exactly 50.
	rank := int((int64(p*1000)*int64(n) + 100_000 - 1) / 100_000)
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// latencies summarises successful operations.
type latencies struct {
	P50, P90, P99, Max time.Duration
}

// summarize sorts samples in place and reads the percentiles off them.
func summarize(samples []time.Duration) latencies {
	slices.Sort(samples)
	if len(samples) == 0 {
		return latencies{}
	}
	return latencies{
		P50: percentile(samples, 50), P90: percentile(samples, 90), P99: percentile(samples, 99),
		Max: samples[len(samples)-1],
	}
}

// perSecond is n operations over window, 0 for an empty window.
func perSecond(n int64, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return float64(n) / window.Seconds()
}

// httpStatusError is an answer with a status the operation did not expect.
type httpStatusError struct {
	Code int
	Body string // the first bytes, for the first-error note
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// badResponseError is a 2xx answer whose body is not what authd sends.
type badResponseError struct{ msg string }

func (e *badResponseError) Error() string { return "bad response: " + e.msg }

// errAlreadyRevoked: a logout answered {"already_revoked": true}, so it wrote
// nothing; it is tallied apart because it is not the operation measured.
var errAlreadyRevoked = errors.New("logout answered already_revoked")

// verifierKinds names the verifier package's sentinels in error kinds.
var verifierKinds = []struct {
	err  error
	kind string
}{
	{verifier.ErrMalformed, "verify_malformed"}, {verifier.ErrSignature, "verify_signature"},
	{verifier.ErrExpired, "verify_expired"}, {verifier.ErrNotYetValid, "verify_not_yet_valid"},
	{verifier.ErrIssuer, "verify_issuer"}, {verifier.ErrAudience, "verify_audience"},
	{verifier.ErrRevoked, "verify_revoked"}, {verifier.ErrStale, "verify_stale"},
	{verifier.ErrClosed, "verify_closed"},
}

// classify names the kind of a failed operation: http_NNN for an
// unexpected status, a transport error class (timeout, conn_refused,
// conn_reset, broken_pipe, eof, transport), bad_response, already_revoked,
// verify_* for the verifier's sentinels, canceled, or other.
func classify(err error) string {
	var se *httpStatusError
	var br *badResponseError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Code)
	case errors.As(err, &br):
		return "bad_response"
	case errors.Is(err, errAlreadyRevoked):
		return "already_revoked"
	}
	for _, k := range verifierKinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "conn_reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken_pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ne):
		return "transport"
	}
	return "other"
}

// formatKinds renders errors by kind as "http_429:3 timeout:1", most
// frequent first, or "-" for none.
func formatKinds(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return "-"
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if kinds[names[i]] != kinds[names[j]] {
			return kinds[names[i]] > kinds[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s:%d", k, kinds[k])
	}
	return strings.Join(parts, " ")
}

// formatDuration prints a latency with three significant figures.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// formatRate prints operations per second with three significant figures.
func formatRate(r float64) string {
	switch {
	case r <= 0:
		return "0"
	case r < 10:
		return fmt.Sprintf("%.2f", r)
	case r < 100:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}
