// Package migrations embeds the SQL schema steps so the binary carries them.
// Files are golang-migrate's NNNNNN_name.up.sql / .down.sql pairs; a step that
// has shipped is never edited, the next one is added instead.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
