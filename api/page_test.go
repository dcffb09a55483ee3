package api

import (
	"errors"
	"net/url"
	"testing"
)

// Every list (posts, media, deliveries) reads its page the same way.
func TestPageQuery(t *testing.T) {
	const id = "0123456789abcdef01234567"
	for _, tt := range []struct {
		query      string
		limit      int
		before     string
		code, text string
	}{
		{"", defaultPageSize, "", "", ""},
		{"limit=1&before=" + id, 1, id, "", ""},
		{"limit=100&before=0123456789ABCDEF01234567", 100, id, "", ""},
		{"limit=0", 0, "", "invalid_limit", ""},
		{"limit=101", 0, "", "invalid_limit", "limit must be a whole number from 1 to 100."},
		{"limit=ten", 0, "", "invalid_limit", ""},
		{"before=nope", 0, "", "invalid_id", "before must be a delivery id"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			limit, before, err := pageQuery(q, "a delivery")
			var e *Error
			switch {
			case tt.code == "" && (err != nil || limit != tt.limit || before != tt.before):
				t.Errorf("pageQuery = %d, %q, %v; want %d, %q", limit, before, err, tt.limit, tt.before)
			case tt.code != "" && (!errors.As(err, &e) || e.Code != tt.code || e.Status != 400 || len(tt.text) > 0 && e.Message[:len(tt.text)] != tt.text):
				t.Errorf("pageQuery error = %v; want 400 %s", err, tt.code)
			}
		})
	}
	if p := page("media", []int{1, 2}, 2, 2, func() string { return "last" }); p["next"] != "last" {
		t.Errorf("a full page: %v; want next", p)
	}
	if p := page("media", []int{1}, 1, 2, func() string { return "last" }); p["next"] != nil {
		t.Errorf("a short page: %v; want no next", p)
	}
}
