package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the routes NewHandler serves;
// TestOpenAPIDocumentsEveryRoute and TestResponsesMatchTheOpenAPI keep it
// true.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the document, for tools that want it without a server.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI)
}
