package ids_test

import (
	"errors"
	"testing"

	"github.com/postflow/postflow/internal/ids"
)

func TestParse(t *testing.T) {
	const id = "65a1f0c2b3d4e5f60718293a"
	for _, tt := range []struct {
		in, want string
		err      error
	}{
		{id, id, nil},
		{"65A1F0C2B3D4E5F60718293A", id, nil},
		{"65a1F0c2B3d4e5f60718293A", id, nil},
		{"", "", ids.ErrInvalid},
		{"x", "", ids.ErrInvalid},
		{id[:23], "", ids.ErrInvalid},
		{id + "0", "", ids.ErrInvalid},
		{" " + id[1:], "", ids.ErrInvalid},
		{"65a1f0c2b3d4e5f60718293g", "", ids.ErrInvalid},
		{"65a1f0c2b3d4e5f6071829\u00e9", "", ids.ErrInvalid},
	} {
		got, err := ids.Parse(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
