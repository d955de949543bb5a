package httpapi_test

import (
	"os"
	"testing"

	"github.com/seedc5a8123e/authd/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
