package verifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedc5a8123e/authd/verifier"
)

// testRedis returns a client of the test Redis (AUTHD_TEST_REDIS_URL,
// default redis://127.0.0.1:6379/0) and its URL, skipping the test when it
// does not answer, unless CI is set.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	u := os.Getenv("AUTHD_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("AUTHD_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s unreachable and CI is set: %v", u, err)
		}
		t.Skipf("Redis at %s unreachable (set AUTHD_TEST_REDIS_URL): %v", u, err)
	}
	return c, u
}

// TestPush: a revocation published on PushChannel is enforced without a
// poll, also after New's context has ended.
func TestPush(t *testing.T) {
	rdb, rURL := testRedis(t)
	srv, _ := newServer(t)
	cfg := srv.Config()
	pollHourly(&cfg) // only push can explain a prompt rejection
	cfg.RedisURL = rURL
	ctx, cancel := context.WithCancel(context.Background())
	v, err := verifier.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	cancel()

	tok, sid := mint(srv)
	msg, _ := json.Marshal(verifier.Revocation{SID: sid, JTI: "j", Exp: testStart.Add(time.Hour).Unix()})
	// Published until seen: the subscription may still be confirming.
	waitFor(t, 5*time.Second, "the pushed revocation", func() bool {
		if err := rdb.Publish(context.Background(), verifier.PushChannel, msg).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
	if st := v.Stats(); st.PushMessages == 0 || st.Polls != 1 {
		t.Errorf("Stats %+v: want push messages and only New's poll", st)
	}
}
