package postgres_test

import (
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/postgres"
)

// TestSchemaCurrentAcceptsOneVersionEitherWay: a binary of schema N is
// ready on N-1 (its replicas start before the migration Job runs) and on
// N+1 (old replicas stay ready after it has), on nothing further away, and
// says which when it is not.
func TestSchemaCurrentAcceptsOneVersionEitherWay(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	latest, err := postgres.Latest()
	if err != nil {
		t.Fatal(err)
	}
	set := func(v int64, dirty bool) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, `UPDATE schema_migrations SET version = $1, dirty = $2`, v, dirty); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		version int64
		dirty   bool
		want    string // empty: ready
	}{
		{int64(latest), false, ""},
		{int64(latest) - 1, false, ""},
		{int64(latest) + 1, false, ""},
		{int64(latest) - 2, false, "run authd migrate up"},
		{int64(latest) + 2, false, "roll out a newer image"},
		{int64(latest), true, "dirty"},
	} {
		set(c.version, c.dirty)
		err := db.SchemaCurrent(ctx)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("version %d: %v, want ready", c.version, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("version %d dirty=%t: %v, want an error saying %q", c.version, c.dirty, err, c.want)
		}
	}
	if _, err := db.Pool().Exec(ctx, `DROP TABLE schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if err := db.SchemaCurrent(ctx); err == nil || !strings.Contains(err.Error(), "migrations not applied") {
		t.Errorf("no schema_migrations table: %v", err)
	}
}
