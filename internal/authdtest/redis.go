package authdtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisURL returns the test Redis (AUTHD_TEST_REDIS_URL, default
// redis://127.0.0.1:6379/0) once it answers a ping. Without one the test is
// skipped, unless CI is set, when it fails.
func RedisURL(t testing.TB) string {
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
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s unreachable and CI is set: %v", u, err)
		}
		t.Skipf("Redis at %s unreachable (set AUTHD_TEST_REDIS_URL): %v", u, err)
	}
	return u
}
