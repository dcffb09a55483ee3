package api_test

import (
	"context"
	"encoding/json"
	"errors"
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

// /readyz's and the operator route's answers match the document.
func TestOpsResponsesMatchTheOpenAPI(t *testing.T) {
	s := newSchemas(t)
	ok := func(context.Context) error { return nil }
	idle := func(context.Context) error { return errors.New("no worker polls") }
	due := time.Now().Add(-time.Hour).UTC()
	list := func(context.Context, int) ([]posts.Overdue, error) {
		return []posts.Overdue{
			{ID: "p1", OrganizationID: "org-b", Status: posts.StatusScheduled, ScheduledAt: &due, DueAt: due, AnnouncedAt: &due},
			{ID: "p2", OrganizationID: "org-c", Status: posts.StatusQueued, DueAt: due},
		}, nil
	}
	for _, tt := range []struct {
		worker api.WorkerCheck
		path   string
		auth   string
	}{
		{api.WorkerCheck{Ping: ok, Required: true}, "/readyz", ""},    // 200
		{api.WorkerCheck{Ping: idle}, "/readyz", ""},                  // 200, not_polling
		{api.WorkerCheck{Ping: idle, Required: true}, "/readyz", ""},  // 503
		{api.WorkerCheck{Ping: idle}, "/readyz?scope=publishing", ""}, // 503
		{api.WorkerCheck{Ping: ok}, "/readyz?scope=all", ""},          // 400
		{api.WorkerCheck{}, "/operator/overdue-posts", "op"},          // 200
		{api.WorkerCheck{}, "/operator/overdue-posts?limit=0", "op"},  // 400
		{api.WorkerCheck{}, "/operator/overdue-posts", ""},            // 401
		{api.WorkerCheck{}, "/operator/overdue-posts", "user"},        // 403
	} {
		h := api.NewHandler(api.Options{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend,
			Auth:    api.AuthOptions{JWTSecret: []byte(jwtSecret)},
			Checks:  []api.Check{{Name: "mongodb", Ping: ok}},
			Worker:  tt.worker,
			Overdue: api.OverdueOptions{List: list, After: time.Minute},
		})
		req := httptest.NewRequest("GET", tt.path, nil)
		switch tt.auth {
		case "op":
			req.Header.Set("Authorization", "Bearer "+operatorToken(t, jwt.MapClaims{"sub": "op", "operator": true, "exp": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256))
		case "user":
			req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		template, _, _ := strings.Cut(tt.path, "?")
		s.check("GET", template, rec.Code, rec.Body.Bytes())
	}
}
