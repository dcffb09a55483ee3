package posts_test

import (
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
)

func TestEventType(t *testing.T) {
	res := func(st ...posts.ResultStatus) []posts.Result {
		var out []posts.Result
		for _, s := range st {
			out = append(out, posts.Result{Status: s})
		}
		return out
	}
	for _, tt := range []struct {
		name    string
		status  posts.Status
		results []posts.Result
		want    string
	}{
		{"published everywhere", posts.StatusPublished, res(posts.ResultPublished, posts.ResultPublished), webhooks.PostPublished},
		{"some published", posts.StatusFailed, res(posts.ResultPublished, posts.ResultFailed), webhooks.PostPartiallyPublished},
		{"some published, some unknown", posts.StatusFailed, res(posts.ResultPublished, posts.ResultUnknown), webhooks.PostPartiallyPublished},
		{"none published, one unknown", posts.StatusFailed, res(posts.ResultFailed, posts.ResultUnknown), webhooks.PostOutcomeUnknown},
		{"all failed", posts.StatusFailed, res(posts.ResultFailed, posts.ResultFailed), webhooks.PostFailed},
		{"no result at all", posts.StatusFailed, nil, webhooks.PostFailed},
		{"cancelled", posts.StatusCancelled, nil, webhooks.PostCancelled},
		{"still publishing", posts.StatusPublishing, res(posts.ResultPublished), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &posts.Post{ID: "p", OrganizationID: "o", Status: tt.status}
			if got := posts.EventType(p, tt.results); got != tt.want {
				t.Errorf("EventType = %q, want %q", got, tt.want)
			}
			ev, err := posts.NewEvent(p, tt.results, time.Now(), "run")
			if err != nil || (ev == nil) != (tt.want == "") || (ev != nil && ev.Type != tt.want) {
				t.Errorf("NewEvent = %+v, %v", ev, err)
			}
		})
	}
}
