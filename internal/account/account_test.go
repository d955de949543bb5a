package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/seedc5a8123e/authd/internal/account"
)

func TestCheckPassword(t *testing.T) {
	for name, c := range map[string]struct {
		username, pw, rule string // rule "" means accepted
	}{
		"Accepted":             {"alice", "correct horse battery", ""},
		"ExactlyTwelveRunes":   {"alice", "éééééééééééé", ""},
		"TooShort":             {"alice", "elevenchars", "at least 12 characters"},
		"ShortInRunesNotBytes": {"alice", "ééééé", "at least 12 characters"},
		"TooLong":              {"alice", strings.Repeat("x", 1025), "at most 1024 bytes"},
		"AtTheByteLimit":       {"alice", strings.Repeat("x", 1024), ""},
		"InvalidUTF8":          {"alice", "\xff" + strings.Repeat("x", 12), "valid UTF-8"},
		"EqualsUsername":       {"LongUsername1", "longusername1", "must not equal the username"},
	} {
		t.Run(name, func(t *testing.T) {
			err := account.CheckPassword(c.username, c.pw)
			if c.rule == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			var pe *account.PolicyError
			if !errors.As(err, &pe) || !strings.Contains(pe.Rule, c.rule) {
				t.Fatalf("got %v, want a PolicyError naming %q", err, c.rule)
			}
		})
	}
}

func TestCheckLimit(t *testing.T) {
	for in, want := range map[int]int{0: account.DefaultLimit, 1: 1, 200: 200} {
		if got, err := account.CheckLimit(in); err != nil || got != want {
			t.Errorf("CheckLimit(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []int{-1, 201} {
		if _, err := account.CheckLimit(in); !errors.Is(err, account.ErrBadLimit) {
			t.Errorf("CheckLimit(%d) = %v, want ErrBadLimit", in, err)
		}
	}
}
