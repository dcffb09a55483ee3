package posts_test

import (
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
)

func TestMayRepeat(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	const window = 5 * time.Minute
	tests := []struct {
		name    string
		prev    *posts.Result
		window  time.Duration
		inDoubt bool
		want    bool
	}{
		{name: "first attempt", prev: nil, window: window, want: true},
		{name: "refused before", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Hour)}, window: window, want: true},
		{name: "answer lost, inside the window", prev: &posts.Result{Status: posts.ResultPublishing, AttemptedAt: ago(time.Minute)}, window: window, inDoubt: true, want: true},
		{name: "answer lost, past the window", prev: &posts.Result{Status: posts.ResultPublishing, AttemptedAt: ago(window)}, window: window, inDoubt: true, want: false},
		{name: "answer lost, no lever", prev: &posts.Result{Status: posts.ResultPublishing, AttemptedAt: ago(time.Second)}, window: 0, inDoubt: true, want: false},
		{name: "answer lost, no time recorded", prev: &posts.Result{Status: posts.ResultPublishing}, window: window, inDoubt: true, want: false},
		// A refusal after the lost answer keeps the doubt, measured from
		// the attempt in doubt, not from the refused one.
		{name: "lost, then refused: still in doubt, from the lost one", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Minute), DoubtSince: ago(window + time.Second)}, window: window, inDoubt: true, want: false},
		{name: "lost, then refused, inside the window", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Second), DoubtSince: ago(time.Minute)}, window: window, inDoubt: true, want: true},
		{name: "two in doubt: the earliest counts", prev: &posts.Result{Status: posts.ResultPublishing, AttemptedAt: ago(time.Second), DoubtSince: ago(window + time.Second)}, window: window, inDoubt: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.prev.InDoubt(); got != tt.inDoubt {
				t.Errorf("InDoubt = %v, want %v", got, tt.inDoubt)
			}
			if got := posts.MayRepeat(tt.prev, tt.window, now); got != tt.want {
				t.Errorf("MayRepeat = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJudgeDuplicate(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	doubt := &posts.Result{Status: posts.ResultPublishing, AttemptedAt: &at}
	doubtAfterRefusal := &posts.Result{Status: posts.ResultPending, AttemptedAt: &at, DoubtSince: &at}
	tests := []struct {
		name      string
		prev      *posts.Result
		existing  string
		claimedBy string
		want      posts.Duplicate
	}{
		{name: "first attempt, another post's text", prev: nil, existing: "urn:li:share:1", want: posts.DuplicateOfOther},
		{name: "first attempt, no post named", prev: nil, want: posts.DuplicateOfOther},
		{name: "refused before: nothing of ours there", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: &at}, existing: "urn:li:share:1", want: posts.DuplicateOfOther},
		{name: "in doubt, named, unclaimed: ours", prev: doubt, existing: "urn:li:share:1", want: posts.DuplicateOfOurs},
		{name: "in doubt after a refusal, named: ours", prev: doubtAfterRefusal, existing: "urn:li:share:1", want: posts.DuplicateOfOurs},
		{name: "in doubt, named, claimed by this post: ours", prev: doubt, existing: "urn:li:share:1", claimedBy: "p1", want: posts.DuplicateOfOurs},
		{name: "in doubt, named, another post's", prev: doubt, existing: "urn:li:share:1", claimedBy: "p2", want: posts.DuplicateOfOther},
		{name: "in doubt, none named", prev: doubt, want: posts.DuplicateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := posts.JudgeDuplicate(tt.prev, "p1", tt.existing, tt.claimedBy); got != tt.want {
				t.Errorf("JudgeDuplicate = %v, want %v", got, tt.want)
			}
		})
	}
}
