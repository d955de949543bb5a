// Package push publishes revocations on Redis pub/sub, the optional fast path
// beside the pulled feed. It is best effort by design: a slow or dead Redis
// costs a logout at most PublishTimeout and never fails it, because verifiers
// catch up from the feed on their next poll.
package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/verifier"
)

// PublishTimeout bounds the time one Publish call may add to a request.
const PublishTimeout = 250 * time.Millisecond

// Publisher announces committed revocations. Implementations must not block
// for long and must not return errors: pull is the contract.
type Publisher interface {
	Publish(ctx context.Context, entries []verifier.Revocation)
}

// Nop publishes nothing; it is used when AUTHD_REDIS_URL is empty.
type Nop struct{}

// Publish does nothing.
func (Nop) Publish(context.Context, []verifier.Revocation) {}

// Redis publishes each entry as one JSON message on verifier.PushChannel.
type Redis struct {
	client  *redis.Client
	log     *slog.Logger
	onError func() // counts failures for metrics; may be nil
}

// NewRedis connects lazily to the server at url (redis:// or rediss://).
func NewRedis(url string, log *slog.Logger, onError func()) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	// Retrying would only stretch a logout; the next poll is the retry.
	opt.MaxRetries = -1
	opt.DialTimeout = PublishTimeout
	opt.ReadTimeout = PublishTimeout
	opt.WriteTimeout = PublishTimeout
	return &Redis{client: redis.NewClient(opt), log: log, onError: onError}, nil
}

// Publish sends the entries in one pipeline, within PublishTimeout.
func (r *Redis) Publish(ctx context.Context, entries []verifier.Revocation) {
	if len(entries) == 0 {
		return
	}
	// Detached from the request: a client that hangs up after its logout
	// committed still gets its revocation pushed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), PublishTimeout)
	defer cancel()
	pipe := r.client.Pipeline()
	for _, e := range entries {
		msg, _ := json.Marshal(e) // a struct of strings and an int always marshals
		pipe.Publish(ctx, verifier.PushChannel, msg)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.log.Warn("push: publish failed; verifiers will see the revocations on their next poll",
			"entries", len(entries), "err", err)
		if r.onError != nil {
			r.onError()
		}
	}
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.client.Close() }
