package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/seedc5a8123e/authd/internal/keys"
)

func keysCmd() *command {
	return &command{
		name:    "keys",
		summary: "manage signing keys",
		detail: `
Signing keys are PKCS#8 PEM files; AUTHD_SIGNING_KEYS lists them, the first
signs and all are published in the JWKS (rotation: deploy/README.md).`,
		subs: []*command{{
			name:     "generate",
			synopsis: "--out FILE [--alg EdDSA|ES256]",
			summary:  "write a new signing key (mode 0600)",
			detail: `
Write a new private key to FILE (mode 0600; an existing file is never
overwritten) and print its kid. Needs no configuration.`,
			define: func(fs *flag.FlagSet) runFunc {
				out := fs.String("out", "", "write the key to `FILE` (required)")
				alg := fs.String("alg", keys.EdDSA, "the signing algorithm `ALG`: EdDSA or ES256")
				return func(_ context.Context, _ []string, e env) error {
					return keysGenerate(*out, *alg, e)
				}
			},
		}},
	}
}

func keysGenerate(out, alg string, e env) error {
	if out == "" {
		return &usageError{msg: "keys generate: --out is required"}
	}
	if alg != keys.EdDSA && alg != keys.ES256 {
		return &usageError{msg: fmt.Sprintf("keys generate: --alg must be EdDSA or ES256, not %q", alg)}
	}
	k, err := keys.Generate(alg)
	if err != nil {
		return err
	}
	if err := k.WriteFile(out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "kid: %s\nalg: %s\nfile: %s\n", k.ID, k.Alg, out)
	return nil
}
