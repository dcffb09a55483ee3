package echo_test

import (
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/echo"
)

func TestQuote(t *testing.T) {
	long := strings.Repeat("a", echo.MaxBytes-1) + "é" + "tail" // é straddles the cut
	for _, tt := range []struct{ name, in, want string }{
		{"short", "name", `"name"`},
		{"control characters show", "a\nb\x00", `"a\nb\x00"`},
		{"exactly the limit", strings.Repeat("b", echo.MaxBytes), `"` + strings.Repeat("b", echo.MaxBytes) + `"`},
		{"cut before a rune it would split", long, `"` + strings.Repeat("a", echo.MaxBytes-1) + `"...`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := echo.Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
