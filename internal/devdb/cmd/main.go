// Command devdb creates a development database unless it exists and prints
// its URL. deploy/dev/devdb.sh runs it (go run ./internal/devdb/cmd) so that
// `make run` does not depend on psql.
//
//	devdb SERVER_URL NAME
//
// SERVER_URL is a postgres:// URL of a database to connect to on the server,
// such as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/seedc5a8123e/authd/internal/devdb"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/devdb/cmd SERVER_URL NAME")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL, created, err := devdb.Ensure(ctx, os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if created {
		fmt.Fprintf(os.Stderr, "devdb: created database %q\n", os.Args[2])
	}
	fmt.Println(dbURL)
}
