package posts_test

import (
	"testing"
	"time"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

// Every network's answer kind, and every code PostFlow gives a result
// itself, has its category and action; a code Categorize does not know
// without a kind is PostFlow's own fault.
func TestCategorize(t *testing.T) {
	tests := []struct {
		name   string
		cause  posts.Cause
		want   posts.Category
		action posts.Action
	}{
		// Each kind of a network's answer, to the post and to an upload.
		{"auth", posts.Cause{Kind: providers.KindAuth, Code: "EXPIRED_ACCESS_TOKEN"}, posts.CategoryAuthExpired, posts.ActionReconnect},
		{"refresh refused", posts.Cause{Kind: providers.KindAuth, Code: "invalid_grant"}, posts.CategoryAuthExpired, posts.ActionReconnect},
		{"auth on upload", posts.Cause{Kind: providers.KindAuth, Code: "token_expired", Upload: true}, posts.CategoryAuthExpired, posts.ActionReconnect},
		{"session ended early, again", posts.Cause{Kind: providers.KindSessionExpired, Code: "ExpiredToken"}, posts.CategoryAuthExpired, posts.ActionReconnect},
		{"invalid content", posts.Cause{Kind: providers.KindInvalidContent, Code: "TEXT_TOO_LONG"}, posts.CategoryContentRejected, posts.ActionEdit},
		{"image refused", posts.Cause{Kind: providers.KindInvalidContent, Code: "HTTP_422", Upload: true}, posts.CategoryMediaRejected, posts.ActionEdit},
		{"duplicate", posts.Cause{Kind: providers.KindDuplicate, Code: "DUPLICATE_POST"}, posts.CategoryContentRejected, posts.ActionEdit},
		{"rate limited", posts.Cause{Kind: providers.KindRateLimited, Code: "TOO_MANY_REQUESTS"}, posts.CategoryRateLimited, posts.ActionWait},
		{"rate limited upload", posts.Cause{Kind: providers.KindRateLimited, Code: "HTTP_429", Upload: true}, posts.CategoryRateLimited, posts.ActionWait},
		{"5xx", posts.Cause{Kind: providers.KindRetryable, Code: "HTTP_503"}, posts.CategoryPlatformUnavailable, posts.ActionRetry},
		{"no answer", posts.Cause{Kind: providers.KindRetryable, Code: "NETWORK"}, posts.CategoryPlatformUnavailable, posts.ActionRetry},
		// PostFlow's own codes, with or without a kind.
		{"account deleted", posts.Cause{Code: posts.CodeAccountDisconnected}, posts.CategoryAccountDisconnected, posts.ActionReconnect},
		{"page's member gone", posts.Cause{Kind: providers.KindAuth, Code: posts.CodeMemberDisconnected}, posts.CategoryAccountDisconnected, posts.ActionReconnect},
		{"private server", posts.Cause{Code: posts.CodeForbiddenAddress}, posts.CategoryAccountDisconnected, posts.ActionReconnect},
		{"not configured", posts.Cause{Code: posts.CodeNotConfigured}, posts.CategoryPlatformUnavailable, posts.ActionRetry},
		{"outcome unknown", posts.Cause{Code: posts.CodeOutcomeUnknown}, posts.CategoryOutcomeUnknown, posts.ActionCheckNetwork},
		{"duplicate of another post", posts.Cause{Kind: providers.KindDuplicate, Code: posts.ErrorCodeDuplicateContent}, posts.CategoryContentRejected, posts.ActionEdit},
		{"image gone", posts.Cause{Kind: providers.KindInvalidContent, Code: posts.CodeMediaNotFound}, posts.CategoryMediaRejected, posts.ActionEdit},
		{"image too big to fit", posts.Cause{Kind: providers.KindInvalidContent, Code: posts.CodeMediaNotFitted}, posts.CategoryMediaRejected, posts.ActionEdit},
		{"run cancelled", posts.Cause{Code: posts.CodeCancelled}, posts.CategoryCancelled, posts.ActionRetry},
		{"rate limited past the horizon", posts.Cause{Code: posts.CodeRateLimitHorizon}, posts.CategoryQuotaExhausted, posts.ActionWait},
		{"the workflow's own failure", posts.Cause{Code: posts.CodePublishFailed}, posts.CategoryInternal, posts.ActionContactSupport},
		{"a code known to no one", posts.Cause{Code: "*errors.errorString"}, posts.CategoryInternal, posts.ActionContactSupport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := posts.Categorize(tt.cause)
			if got != tt.want || got.Action() != tt.action {
				t.Errorf("Categorize(%+v) = %s (%s), want %s (%s)", tt.cause, got, got.Action(), tt.want, tt.action)
			}
		})
	}
}

// No network's answer is taken for PostFlow's own fault, and every
// category calls for an action.
func TestEveryKindAndCategoryIsCovered(t *testing.T) {
	for k := providers.KindRetryable; k <= providers.KindSessionExpired; k++ {
		for _, upload := range []bool{false, true} {
			if c := posts.Categorize(posts.Cause{Kind: k, Code: "X", Upload: upload}); c == posts.CategoryInternal || c == "" {
				t.Errorf("kind %s (upload %v) is %q", k, upload, c)
			}
		}
	}
	for _, c := range posts.Categories {
		if c.Action() == "" {
			t.Errorf("category %s calls for no action", c)
		}
	}
}

// A result read back carries its action; one recorded before categories
// gets its category from its code.
func TestExplain(t *testing.T) {
	tests := []struct {
		name   string
		r      posts.Result
		want   posts.Category
		action posts.Action
	}{
		{"recorded with a category", posts.Result{Status: posts.ResultFailed, ErrorCode: "HTTP_503", ErrorCategory: posts.CategoryPlatformUnavailable},
			posts.CategoryPlatformUnavailable, posts.ActionRetry},
		{"unknown, recorded before", posts.Result{Status: posts.ResultUnknown, ErrorCode: posts.CodeOutcomeUnknown}, posts.CategoryOutcomeUnknown, posts.ActionCheckNetwork},
		{"failed with PostFlow's code, recorded before", posts.Result{Status: posts.ResultFailed, ErrorCode: posts.CodeCancelled}, posts.CategoryCancelled, posts.ActionRetry},
		{"published", posts.Result{Status: posts.ResultPublished}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Explain()
			if r.ErrorCategory != tt.want || r.ErrorAction != tt.action {
				t.Errorf("%+v explained as %s %s, want %s %s", tt.r, r.ErrorCategory, r.ErrorAction, tt.want, tt.action)
			}
		})
	}
}

// A failed call becomes an attempt that says whether the network made
// nothing, and until when a rate limit waits, counted from its answer.
func TestFailedAttempt(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	answered := at.Add(2 * time.Second)
	tests := []struct {
		name    string
		step    posts.AttemptStep
		err     providers.Error
		outcome posts.AttemptOutcome
		cat     posts.Category
		wait    time.Duration // 0: no wait
	}{
		{"429", posts.StepPublish, providers.Error{Kind: providers.KindRateLimited, Status: 429, Code: "TOO_MANY_REQUESTS", RetryAfter: time.Minute},
			posts.OutcomeRefused, posts.CategoryRateLimited, time.Minute},
		{"503", posts.StepPublish, providers.Error{Kind: providers.KindRetryable, Status: 503, Code: "HTTP_503"}, posts.OutcomeRefused, posts.CategoryPlatformUnavailable, 0},
		{"504", posts.StepPublish, providers.Error{Kind: providers.KindRetryable, Status: 504, Code: "HTTP_504"}, posts.OutcomeInDoubt, posts.CategoryPlatformUnavailable, 0},
		{"no answer", posts.StepPublish, providers.Error{Kind: providers.KindRetryable, Code: "NETWORK"}, posts.OutcomeInDoubt, posts.CategoryPlatformUnavailable, 0},
		{"image refused", posts.StepUpload, providers.Error{Kind: providers.KindInvalidContent, Status: 422, Code: "HTTP_422"}, posts.OutcomeRefused, posts.CategoryMediaRejected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := posts.FailedAttempt(at, answered, tt.step, &tt.err)
			if a.Outcome != tt.outcome || a.ErrorCategory != tt.cat || a.HTTPStatus != tt.err.Status || a.Code != tt.err.Code || !a.At.Equal(at) || a.Step != tt.step {
				t.Errorf("attempt %+v, want %s %s", a, tt.outcome, tt.cat)
			}
			if (a.WaitUntil != nil) != (tt.wait > 0) || a.WaitUntil != nil && !a.WaitUntil.Equal(answered.Add(tt.wait)) {
				t.Errorf("waits until %v, want %v after %v", a.WaitUntil, tt.wait, answered)
			}
		})
	}
}
