package main

import (
	"fmt"

	"github.com/seedc5a8123e/authd/internal/keys"
)

func keysCmd(args []string, e env) error {
	if len(args) == 0 || args[0] != "generate" {
		return &usageError{"keys: want `keys generate --out FILE`"}
	}
	fs := newFlagSet("keys generate", e)
	out := fs.String("out", "", "file to write the PKCS#8 PEM key to")
	alg := fs.String("alg", keys.EdDSA, "EdDSA or ES256")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{"keys generate: --out is required"}
	}
	if *alg != keys.EdDSA && *alg != keys.ES256 {
		return &usageError{fmt.Sprintf("keys generate: --alg must be EdDSA or ES256, not %q", *alg)}
	}
	k, err := keys.Generate(*alg)
	if err != nil {
		return err
	}
	if err := k.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "kid: %s\nalg: %s\nfile: %s\n", k.ID, k.Alg, *out)
	return nil
}
