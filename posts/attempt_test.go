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
	named := posts.DuplicateAnswer{PostID: "p1", ExistingPostID: "urn:li:share:1"}
	with := func(f func(*posts.DuplicateAnswer)) posts.DuplicateAnswer { d := named; f(&d); return d }
	tests := []struct {
		name string
		prev *posts.Result
		d    posts.DuplicateAnswer
		want posts.Duplicate
	}{
		{name: "first attempt, another post's text", prev: nil, d: named, want: posts.DuplicateOfOther},
		{name: "first attempt, no post named", prev: nil, d: posts.DuplicateAnswer{PostID: "p1"}, want: posts.DuplicateOfOther},
		{name: "refused before: nothing of ours there", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: &at}, d: named, want: posts.DuplicateOfOther},
		{name: "in doubt, named, unclaimed: ours", prev: doubt, d: named, want: posts.DuplicateOfOurs},
		{name: "in doubt after a refusal, named: ours", prev: doubtAfterRefusal, d: named, want: posts.DuplicateOfOurs},
		{name: "in doubt, named, claimed by this post: ours", prev: doubt, d: with(func(d *posts.DuplicateAnswer) { d.ClaimedBy = "p1" }), want: posts.DuplicateOfOurs},
		{name: "in doubt, named, another post's", prev: doubt, d: with(func(d *posts.DuplicateAnswer) { d.ClaimedBy = "p2" }), want: posts.DuplicateOfOther},
		{name: "in doubt, none named", prev: doubt, d: posts.DuplicateAnswer{PostID: "p1"}, want: posts.DuplicateUnknown},
		// The key would have answered our post: the one named is another's.
		{name: "in doubt, keyed repeat", prev: doubt, d: with(func(d *posts.DuplicateAnswer) { d.Keyed = true }), want: posts.DuplicateOfOther},
		{name: "in doubt, keyed repeat, none named", prev: doubt, d: posts.DuplicateAnswer{PostID: "p1", Keyed: true}, want: posts.DuplicateOfOther},
		// Another post with the same text is in doubt too: either may own it.
		{name: "in doubt, a rival in doubt", prev: doubt, d: with(func(d *posts.DuplicateAnswer) { d.Rivals = true }), want: posts.DuplicateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := posts.JudgeDuplicate(tt.prev, tt.d); got != tt.want {
				t.Errorf("JudgeDuplicate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextStep(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	const window = 5 * time.Minute
	duplicateAnswer := posts.Lever{Window: window}
	readBack := posts.Lever{ReadBack: true}
	none := posts.Lever{}
	lost := func(d time.Duration) *posts.Result {
		return &posts.Result{Status: posts.ResultPublishing, AttemptedAt: ago(d)}
	}
	tests := []struct {
		name  string
		prev  *posts.Result
		lever posts.Lever
		want  posts.Step
	}{
		{name: "no earlier attempt", prev: nil, lever: duplicateAnswer, want: posts.StepFirst},
		{name: "no earlier attempt, no lever", prev: nil, lever: none, want: posts.StepFirst},
		{name: "published: returned as it is", prev: &posts.Result{Status: posts.ResultPublished, PlatformPostID: "urn:li:share:1"}, lever: duplicateAnswer, want: posts.StepSettled},
		{name: "published, with a read back: not read", prev: &posts.Result{Status: posts.ResultPublished}, lever: readBack, want: posts.StepSettled},
		{name: "unknown stays unknown", prev: &posts.Result{Status: posts.ResultUnknown, ErrorCode: "OUTCOME_UNKNOWN"}, lever: duplicateAnswer, want: posts.StepSettled},
		{name: "unknown stays unknown, even with a read back", prev: &posts.Result{Status: posts.ResultUnknown, DoubtSince: ago(time.Minute)}, lever: readBack, want: posts.StepSettled},
		{name: "failed may go again", prev: &posts.Result{Status: posts.ResultFailed, AttemptedAt: ago(time.Hour)}, lever: none, want: posts.StepRepeat},
		{name: "refused (pending) may go again", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Hour)}, lever: none, want: posts.StepRepeat},
		{name: "refused, with a read back: nothing to read", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Hour)}, lever: readBack, want: posts.StepRepeat},
		{name: "in doubt inside the window", prev: lost(time.Minute), lever: duplicateAnswer, want: posts.StepRepeat},
		{name: "in doubt past the window", prev: lost(window), lever: duplicateAnswer, want: posts.StepUnknown},
		{name: "in doubt, no lever", prev: lost(time.Second), lever: none, want: posts.StepUnknown},
		{name: "in doubt, no time recorded", prev: &posts.Result{Status: posts.ResultPublishing}, lever: duplicateAnswer, want: posts.StepUnknown},
		{name: "in doubt, read back: past any window", prev: lost(48 * time.Hour), lever: readBack, want: posts.StepReadBack},
		{name: "in doubt after a refusal, read back", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Second), DoubtSince: ago(time.Hour)}, lever: readBack, want: posts.StepReadBack},
		{name: "in doubt after a refusal, past the window", prev: &posts.Result{Status: posts.ResultPending, AttemptedAt: ago(time.Second), DoubtSince: ago(window + time.Second)}, lever: duplicateAnswer, want: posts.StepUnknown},
		{name: "failed after a doubt: still in doubt", prev: &posts.Result{Status: posts.ResultFailed, DoubtSince: ago(time.Minute)}, lever: duplicateAnswer, want: posts.StepRepeat},
		{name: "failed after a doubt, past the window", prev: &posts.Result{Status: posts.ResultFailed, DoubtSince: ago(time.Hour)}, lever: duplicateAnswer, want: posts.StepUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := posts.NextStep(tt.prev, tt.lever, now); got != tt.want {
				t.Errorf("NextStep = %v, want %v", got, tt.want)
			}
		})
	}
}
