// Package api holds the admin API's OpenAPI 3.1 description, the contract between the admin
// handler, its clients and docs/admin-api.md. The handler serves Document at GET /openapi.yaml,
// and api/apitest checks the handler's requests and responses against it in tests.
package api

import _ "embed"

// Document is api/openapi.yaml, embedded so that the document served is the one tested.
//
//go:embed openapi.yaml
var Document []byte
