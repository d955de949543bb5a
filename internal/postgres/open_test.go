package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/pgtest"
	"github.com/seedc5a8123e/authd/internal/postgres"
)

// A read URL that cannot be used fails Open with an error naming its
// variable, without its password.
func TestOpenNamesTheReadURL(t *testing.T) {
	primary := pgtest.URL(t)
	for name, readURL := range map[string]string{
		"unreachable": "postgres://authd:s3cret@127.0.0.1:1/authd?sslmode=disable&connect_timeout=1",
		"unparseable": "postgres://authd:s3cret@127.0.0.1:5432/authd?sslmode=bogus",
	} {
		t.Run(name, func(t *testing.T) {
			db, err := postgres.Open(ctx, primary, postgres.Options{ReadURL: readURL})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "AUTHD_DATABASE_READ_URL") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Open err = %q, want one naming AUTHD_DATABASE_READ_URL without the password", err)
			}
		})
	}
}

// With a replica, reads that may lag go there and the rest to the primary;
// without one, Replica is nil and the feed reads the primary.
func TestReadSourceWithoutReplicaPicksThePrimary(t *testing.T) {
	db := pgtest.NewDB(t)
	if db.Replica() != nil {
		t.Fatal("Replica() without a read URL")
	}
	src := postgres.NewReadSource(db, nil, 0, nil)
	if got, lag := src.Pick(ctx, t0); got != db || lag != 0 {
		t.Fatalf("Pick = %p, %s; want the primary, 0", got, lag)
	}
}

// A read URL pointing at a primary (not in recovery) has no replay
// position: the lag is unknown and the feed reads the primary.
func TestReadSourceRefusesAServerNotInRecovery(t *testing.T) {
	u := pgtest.URL(t)
	db, err := postgres.Open(ctx, u, postgres.Options{ReadURL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var gotSource string
	var gotKnown bool
	src := postgres.NewReadSource(db, db.Replica(), postgres.MaxRevokeTx, func(source string, _ time.Duration, known bool) {
		gotSource, gotKnown = source, known
	})
	if got, lag := src.Pick(ctx, t0); got != db || lag != 0 || gotSource != postgres.SourcePrimary || gotKnown {
		t.Fatalf("Pick = %p, %s (observed %s, known %t); want the primary, unknown lag", got, lag, gotSource, gotKnown)
	}
}
