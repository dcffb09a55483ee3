package bluesky

import (
	"fmt"
	"testing"
	"time"
)

func TestRecordKey(t *testing.T) {
	created := time.Date(2026, 11, 30, 9, 15, 42, 123456789, time.UTC)
	seen := map[string]string{}
	for i := range 2000 {
		key := fmt.Sprintf("postflow-p%d-a", i)
		rk, err := RecordKey(created, key)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidTID(rk) {
			t.Fatalf("RecordKey(%q) = %q: not a TID", key, rk)
		}
		if again, _ := RecordKey(created, key); again != rk {
			t.Fatalf("RecordKey(%q) is not stable: %q then %q", key, rk, again)
		}
		if other, ok := seen[rk]; ok {
			t.Fatalf("keys %q and %q share the record key %q", other, key, rk)
		}
		seen[rk] = key
		// The timestamp is the creation's second; the microseconds are
		// the key's.
		if got := tidTime(rk); got.Unix() != created.Unix() {
			t.Fatalf("RecordKey(%q) = %q holds %s, want within %s", key, rk, got, created.Truncate(time.Second))
		}
	}
	// Keys sort as creation times do.
	a, _ := RecordKey(created, "k1")
	b, _ := RecordKey(created.Add(time.Second), "k2")
	if !(a < b) {
		t.Errorf("a later creation sorts first: %q, %q", a, b)
	}
}

func TestRecordKeyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		created time.Time
		key     string
	}{
		{"zero time", time.Time{}, "k"},
		{"before 1970", time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), "k"},
		{"past the TID range", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), "k"},
		{"no key", time.Now(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rk, err := RecordKey(tc.created, tc.key); err == nil {
				t.Errorf("RecordKey = %q, want an error", rk)
			}
		})
	}
}

func TestValidTID(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"3jzfcijpj2z2a", true},
		{"2222222222222", true},
		{"7777777777777", true},
		{"zzzzzzzzzzzzz", false}, // top bit set: the PDS says "Invalid TID string"
		{"3jzfcijpj2z2", false},
		{"3jzfcijpj2z21", false},
		{"3JZFCIJPJ2Z2A", false},
	} {
		if got := ValidTID(tc.s); got != tc.want {
			t.Errorf("ValidTID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
