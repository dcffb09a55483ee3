// Package payloadcodectest gives tests the payload key that sealed the
// recorded histories (workflows/testdata/histories/payload.key), so that
// the tests that record histories and the ones that replay them read the
// key one way.
package payloadcodectest

import (
	"os"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/payloadcodec"
)

// Key is the key in the file at path, as TEMPORAL_PAYLOAD_KEY holds it.
func Key(t testing.TB, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// DataConverter seals and opens payloads with the key in the file at path.
func DataConverter(t testing.TB, path string) converter.DataConverter {
	t.Helper()
	key, err := config.DecodeKey(Key(t, path))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := payloadcodec.NewFromKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	return payloadcodec.DataConverter(codec)
}
