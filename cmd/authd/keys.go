package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seedc5a8123e/authd/internal/app"
	"github.com/seedc5a8123e/authd/internal/keyring"
	"github.com/seedc5a8123e/authd/internal/keys"
)

// errFileKeys: a database-key command without AUTHD_KEY_ENCRYPTION_KEY.
var errFileKeys = errors.New("AUTHD_KEY_ENCRYPTION_KEY is not set: the signing keys are AUTHD_SIGNING_KEYS files, " +
	"rotated by hand (deploy/README.md); set it to keep rotating keys in the database")

func keysCmd() *command {
	return &command{
		name:    "keys",
		summary: "manage signing keys",
		detail: `
With AUTHD_KEY_ENCRYPTION_KEY set, signing keys live in the database, sealed
under that key, and rotate by themselves on AUTHD_KEY_ROTATION (default every
30 days) with no restart: each new key is published in the JWKS before it
signs, and a replaced key stays published until its tokens have expired.
Without it, AUTHD_SIGNING_KEYS lists PKCS#8 PEM files, the first signs and all
are published (rotation by hand: deploy/README.md).`,
		subs: []*command{{
			name:     "generate",
			synopsis: "--out FILE [--alg EdDSA|ES256]",
			summary:  "write a new signing key file (mode 0600)",
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
		}, {
			name:    "kek",
			summary: "print a new key-encryption key for AUTHD_KEY_ENCRYPTION_KEY",
			detail: `
Print the base64 of 32 bytes from the operating system's CSPRNG: a value for
AUTHD_KEY_ENCRYPTION_KEY, or the content of the file it names. Store it as a
secret (a Kubernetes Secret, a vault), never beside the database backups: the
database holds the signing keys only sealed under it. Needs no configuration.`,
			define: func(fs *flag.FlagSet) runFunc {
				return func(_ context.Context, _ []string, e env) error {
					kek, err := keys.NewKEK()
					if err != nil {
						return err
					}
					_, err = fmt.Fprintln(e.stdout, kek)
					return err
				}
			},
		}, {
			name:    "list",
			summary: "list the signing keys and their schedule",
			detail: `
Print every signing key, one per line: kid, algorithm, state (pending:
published, not signing yet; signing; retiring: published for the tokens it
signed; retired), and when it was published, began to sign and retires.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, _ []string, e env) error { return keysList(ctx, e) }
			},
		}, {
			name:    "rotate",
			summary: "add the next database signing key now",
			admin:   true,
			detail: `
Add a new database signing key now, whatever AUTHD_KEY_ROTATION says: it is
published at once, signs on every replica once the JWKS caches have expired
(about 5 minutes), and the keys it replaces leave the JWKS once their tokens
have expired. Prints the new kid and when it begins to sign. Recorded in the
audit log as signing_key_rotated.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, _ []string, e env) error { return keysRotate(ctx, e) }
			},
		}, {
			name:     "import",
			synopsis: "--files FILE[,FILE...]",
			summary:  "move AUTHD_SIGNING_KEYS files into the database",
			admin:    true,
			detail: `
Seal the PEM key files (the AUTHD_SIGNING_KEYS list: the first signs) under
AUTHD_KEY_ENCRYPTION_KEY and store them, so that switching a deployment from
key files to database keys keeps signing with the key its verifiers know:
run it once, with AUTHD_KEY_ENCRYPTION_KEY set and AUTHD_SIGNING_KEYS unset,
then restart the replicas the same way. Refused when the database already
holds keys.` + needsDB,
			define: func(fs *flag.FlagSet) runFunc {
				files := fs.String("files", "", "the comma-separated PEM `FILES`, signing key first (required)")
				return func(ctx context.Context, _ []string, e env) error { return keysImport(ctx, *files, e) }
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

func keysList(ctx context.Context, e env) error {
	a, _, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	now := a.Clock.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tPUBLISHED\tSIGNS FROM\tRETIRES")
	if a.Config.KeyEncryptionKey == "" {
		for i, k := range a.Keys.Current().All() {
			state := "published"
			if i == 0 {
				state = "signing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\n", k.ID, k.Alg, state)
		}
		return tw.Flush()
	}
	// The schedule only: listing opens no private key.
	kc, err := a.KeyRingConfig()
	if err != nil {
		return err
	}
	rows, err := a.DB.SigningKeys(ctx)
	if err != nil {
		return err
	}
	ts := keyring.Schedule(rows, kc.RetireAfter)
	signing, _ := keys.Signing(ts, now)
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.KID, t.Alg, keyState(t, signing, now),
			at(t.PublishAt), at(t.SignAt), at(t.RetireAt))
	}
	return tw.Flush()
}

func keyState(t keys.Timed, signing string, now time.Time) string {
	switch {
	case t.KID == signing:
		return "signing"
	case !t.Published(now):
		return "retired"
	case t.SignAt.After(now):
		return "pending"
	}
	return "retiring"
}

func at(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keysRotate(ctx context.Context, e env) error {
	a, ctx, err := openApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.Close()
	switch {
	case a.Config.KeyEncryptionKey == "":
		return errFileKeys
	case a.KeyRing == nil:
		return keyring.ErrNoKeys
	}
	kid, signAt, err := a.KeyRing.Rotate(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(e.stdout, "kid: %s\npublished now; signs from %s on every replica\n", kid, at(signAt))
	return nil
}

func keysImport(ctx context.Context, files string, e env) error {
	if files == "" {
		return &usageError{msg: "keys import: --files is required"}
	}
	set, err := keys.LoadFiles(strings.Split(files, ","))
	if err != nil {
		return err
	}
	// The file keys stand in for the keyring, which would otherwise make a
	// first key of its own in the empty table.
	a, ctx, err := openAppWith(ctx, e, app.Deps{Keys: set})
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Config.KeyEncryptionKey == "" {
		return errFileKeys
	}
	kc, err := a.KeyRingConfig()
	if err != nil {
		return err
	}
	if err := keyring.Import(ctx, a.DB, a.Clock, kc, set); err != nil {
		return fmt.Errorf("keys import: %w", err)
	}
	fmt.Fprintf(e.stdout, "imported %d keys; %s signs\n", len(set.All()), set.Signing().ID)
	return nil
}
