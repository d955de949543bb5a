// Package openapi holds authd's OpenAPI 3 description, openapi.yaml, the
// contract of its HTTP API. Tests check real responses against it (see
// internal/openapitest); the server may serve it as it is.
package openapi

import _ "embed"

// Spec is openapi.yaml, verbatim.
//
//go:embed openapi.yaml
var Spec []byte
