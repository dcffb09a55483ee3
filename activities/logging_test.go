package activities_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// levelLog is an SDK logger that keeps each record as "LEVEL msg k=v ...".
type levelLog struct {
	mu      sync.Mutex
	records []string
}

func (l *levelLog) add(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, level+" "+msg+" "+fmt.Sprint(kv...))
}
func (l *levelLog) Debug(msg string, kv ...any) { l.add("DEBUG", msg, kv) }
func (l *levelLog) Info(msg string, kv ...any)  { l.add("INFO", msg, kv) }
func (l *levelLog) Warn(msg string, kv ...any)  { l.add("WARN", msg, kv) }
func (l *levelLog) Error(msg string, kv ...any) { l.add("ERROR", msg, kv) }

// at returns the records of level.
func (l *levelLog) at(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if strings.HasPrefix(r, level+" ") {
			out = append(out, r)
		}
	}
	return out
}

// A healthy platform's rate limits and outages are INFO and WARN with the
// platform's code; ERROR is for what needs a person.
func TestExpectedAnswersAreNotErrors(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string
		level     string // the level that must name the code
		code      string
		wantError bool
	}{
		{name: "rate limited", answers: []string{"429"}, level: "INFO", code: "TOO_MANY_REQUESTS"},
		{name: "unavailable", answers: []string{"503"}, level: "WARN", code: "HTTP_503"},
		{name: "answer lost", answers: []string{"504"}, level: "WARN", code: "HTTP_504"},
		{name: "token expired: the account needs a person", answers: []string{"401"}, level: "ERROR", code: "EXPIRED_ACCESS_TOKEN", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			log := &levelLog{}
			var suite testsuite.WorkflowTestSuite
			suite.SetLogger(log)
			env := suite.NewTestActivityEnvironment()
			w.tw.Activities().Register(env)
			w.env = env

			p := w.post(t, "logged "+tt.name, posts.StatusPublishing)
			w.fake.Configure(func(s *linkedinfake.Server) { s.Answers = tt.answers })
			_, _ = w.publish(t, p)
			found := false
			for _, r := range log.at(tt.level) {
				found = found || strings.Contains(r, tt.code)
			}
			if !found {
				t.Errorf("no %s record names %s; records: %q", tt.level, tt.code, log.records)
			}
			if errs := log.at("ERROR"); (len(errs) > 0) != tt.wantError {
				t.Errorf("ERROR records %q, want some: %v", errs, tt.wantError)
			}
		})
	}
}
