package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/posts"
)

// GET /operator/overdue-posts lists every organization's overdue posts
// to operators only (or anyone on a loopback host in dev).
func TestOverduePostsRoute(t *testing.T) {
	due := time.Now().Add(-25 * time.Minute).UTC().Truncate(time.Second)
	var gotLimit int
	list := func(_ context.Context, limit int) ([]posts.Overdue, error) {
		gotLimit = limit
		return []posts.Overdue{{ID: "p1", OrganizationID: "org-b", Status: posts.StatusQueued, DueAt: due}}, nil
	}
	exp := time.Now().Add(time.Hour).Unix()
	operator := "Bearer " + operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": exp}, jwt.SigningMethodHS256)
	for _, tt := range []struct {
		name       string
		anonymous  bool
		host       string
		auth       string
		query      string
		wantStatus int
		wantLimit  int
	}{
		{name: "operator", auth: operator, wantStatus: 200, wantLimit: 100},
		{name: "operator with a limit", auth: operator, query: "?limit=5", wantStatus: 200, wantLimit: 5},
		{name: "limit out of range", auth: operator, query: "?limit=501", wantStatus: 400},
		{name: "no token", wantStatus: 401},
		{name: "a user, not an operator", auth: "Bearer " + token(t, "alice", []string{"org-a"}, ""), wantStatus: 403},
		{name: "trusted headers are no operator", auth: "", wantStatus: 401},
		{name: "dev, loopback host", anonymous: true, host: "127.0.0.1:8080", wantStatus: 200, wantLimit: 100},
		{name: "dev, another host (rebinding)", anonymous: true, host: "evil.example:8080", wantStatus: 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gotLimit = 0
			h := api.NewHandler(api.Options{
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend,
				Auth:    api.AuthOptions{JWTSecret: []byte(jwtSecret), TrustHeaders: true},
				Overdue: api.OverdueOptions{List: list, After: 10 * time.Minute, Anonymous: tt.anonymous},
			})
			req := httptest.NewRequest("GET", "/operator/overdue-posts"+tt.query, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			req.Header.Set("X-User-Id", "alice")
			req.Header.Set("X-Organization-Id", "org-a")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if gotLimit != tt.wantLimit {
				t.Errorf("listed with limit %d, want %d", gotLimit, tt.wantLimit)
			}
			if rec.Code != http.StatusOK {
				if !strings.Contains(rec.Body.String(), `"error"`) {
					t.Errorf("refusal without the error shape: %s", rec.Body)
				}
				return
			}
			var body struct {
				OverdueAfterSeconds int64 `json:"overdueAfterSeconds"`
				Posts               []struct {
					ID             string    `json:"id"`
					OrganizationID string    `json:"organizationId"`
					DueAt          time.Time `json:"dueAt"`
					OverdueSeconds int64     `json:"overdueSeconds"`
				} `json:"posts"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.OverdueAfterSeconds != 600 || len(body.Posts) != 1 || body.Posts[0].OrganizationID != "org-b" ||
				!body.Posts[0].DueAt.Equal(due) || body.Posts[0].OverdueSeconds < 25*60 || body.Posts[0].OverdueSeconds > 26*60 {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
}
