package posts

import "github.com/postflow/postflow/providers"

// Category is the kind of failure a result met, from one small list shared
// by every network, so that a program acts on it without knowing each
// network's own codes (errorCode). Categorize decides it, and nothing else.
type Category string

const (
	// CategoryAuthExpired: the network refused the account's token for
	// good (expired, revoked, refresh refused).
	CategoryAuthExpired Category = "auth_expired"
	// CategoryAccountDisconnected: the account is gone from PostFlow, or
	// cannot be used as it was connected (its server is at an address
	// PostFlow may not call, a page's member is gone).
	CategoryAccountDisconnected Category = "account_disconnected"
	// CategoryContentRejected: the network refused the post's text as it
	// is (too long, invalid, a duplicate of another post).
	CategoryContentRejected Category = "content_rejected"
	// CategoryMediaRejected: an image of the post could not be sent
	// (refused by the network, gone from the library, too big to fit).
	CategoryMediaRejected Category = "media_rejected"
	// CategoryRateLimited: the network asked PostFlow to wait (a 429);
	// PostFlow waits by itself.
	CategoryRateLimited Category = "rate_limited"
	// CategoryQuotaExhausted: the network kept refusing for its limits
	// past RATE_LIMIT_HORIZON (a daily or monthly quota spent).
	CategoryQuotaExhausted Category = "quota_exhausted"
	// CategoryPlatformUnavailable: the network did not answer, or answered
	// 5xx, until PostFlow's retries ran out; or it is not configured on
	// the worker.
	CategoryPlatformUnavailable Category = "platform_unavailable"
	// CategoryOutcomeUnknown: an attempt may have published and nothing
	// can tell (status unknown).
	CategoryOutcomeUnknown Category = "outcome_unknown"
	// CategoryCancelled: the run was cancelled before the account was
	// published to.
	CategoryCancelled Category = "cancelled"
	// CategoryDeleteRefused: the network refused to delete a published
	// post (an unpublish): it is still there.
	CategoryDeleteRefused Category = "delete_refused"
	// CategoryInternal: PostFlow's own fault (its store, a bug).
	CategoryInternal Category = "internal"
)

// Categories lists every Category, in the order documented.
var Categories = []Category{
	CategoryAuthExpired, CategoryAccountDisconnected, CategoryContentRejected, CategoryMediaRejected,
	CategoryRateLimited, CategoryQuotaExhausted, CategoryPlatformUnavailable, CategoryOutcomeUnknown,
	CategoryCancelled, CategoryDeleteRefused, CategoryInternal,
}

// Action is what a failure's Category calls for from the integrator.
type Action string

const (
	// ActionReconnect: connect the account again, then retry.
	ActionReconnect Action = "reconnect"
	// ActionEdit: change the post (its text or images), then retry.
	ActionEdit Action = "edit"
	// ActionWait: wait (PostFlow does, for a rate limit), then retry.
	ActionWait Action = "wait"
	// ActionRetry: make the request again, nothing to change: POST
	// /posts/{id}/retry for a publish, POST /posts/{id}/unpublish naming
	// the account for an unpublish.
	ActionRetry Action = "retry"
	// ActionCheckNetwork: look at the account's feed on the network; if
	// the post is not there, retry naming the account (for an unpublish
	// refused: if it is still there, delete it there by hand).
	ActionCheckNetwork Action = "check_network"
	// ActionContactSupport: the deployment's operators must look.
	ActionContactSupport Action = "contact_support"
)

// Action is what c calls for; "" for "".
func (c Category) Action() Action {
	switch c {
	case CategoryAuthExpired, CategoryAccountDisconnected:
		return ActionReconnect
	case CategoryContentRejected, CategoryMediaRejected:
		return ActionEdit
	case CategoryRateLimited, CategoryQuotaExhausted:
		return ActionWait
	case CategoryPlatformUnavailable, CategoryCancelled:
		return ActionRetry
	case CategoryOutcomeUnknown, CategoryDeleteRefused:
		return ActionCheckNetwork
	case CategoryInternal:
		return ActionContactSupport
	}
	return ""
}

// UnpublishAction is what c calls for when an unpublish failed with it:
// its Action, but for a disconnected account, which PostFlow can no longer
// act as (connecting it again makes another account): delete the post on
// the network by hand.
func (c Category) UnpublishAction() Action {
	if c == CategoryAccountDisconnected {
		return ActionCheckNetwork
	}
	return c.Action()
}

// The codes PostFlow itself gives a result (errorCode), beside the
// networks' own: what the activities and the workflow decide without a
// network's answer. Categorize knows each.
const (
	CodeAccountDisconnected = "ACCOUNT_DISCONNECTED" // the account was deleted
	CodeMemberDisconnected  = "MEMBER_DISCONNECTED"  // a page's member account is gone
	CodeForbiddenAddress    = "FORBIDDEN_ADDRESS"    // the account's server is private
	CodeNotConfigured       = "PLATFORM_UNAVAILABLE" // the network is not configured on the worker
	CodeOutcomeUnknown      = "OUTCOME_UNKNOWN"
	CodeMediaNotFound       = "MEDIA_NOT_FOUND"  // an image left the library
	CodeMediaNotFitted      = "MEDIA_NOT_FITTED" // an image could not be re-encoded to fit
	CodeCancelled           = "CANCELLED"        // workflows.CodeCancelled
	CodeRateLimitHorizon    = "RATE_LIMIT_HORIZON"
	CodePublishFailed       = "PUBLISH_FAILED" // the workflow's code for an error of no known type
	CodeNotPublished        = "NOT_PUBLISHED"  // an unpublish found no published post to delete
)

// Cause is what is known of a failure when its result is recorded.
type Cause struct {
	// Kind is the network's answer, classified (providers.Error.Kind);
	// 0 when PostFlow decided without one: Code is then one of the Code
	// constants above, or a network's code kept from an earlier answer.
	Kind providers.Kind
	// Code is the result's errorCode.
	Code string
	// Upload: the answer was to an image upload, not to the post.
	Upload bool
	// Delete: the answer was to a delete of the published post (an
	// unpublish), not to its publication.
	Delete bool
}

// Categorize decides the Category of a failure: the one place a network's
// answer or PostFlow's own code becomes one, for every network.
func Categorize(c Cause) Category {
	switch c.Code {
	case CodeOutcomeUnknown:
		return CategoryOutcomeUnknown
	case CodeAccountDisconnected, CodeMemberDisconnected, CodeForbiddenAddress:
		return CategoryAccountDisconnected
	case CodeMediaNotFound, CodeMediaNotFitted:
		return CategoryMediaRejected
	case ErrorCodeDuplicateContent:
		return CategoryContentRejected
	case CodeCancelled:
		return CategoryCancelled
	case CodeRateLimitHorizon:
		return CategoryQuotaExhausted
	case CodeNotConfigured:
		return CategoryPlatformUnavailable
	}
	switch c.Kind {
	case providers.KindAuth, providers.KindSessionExpired:
		// A session that keeps ending early, even after a new one, needs
		// the account connected again as much as a refused token does.
		return CategoryAuthExpired
	case providers.KindInvalidContent, providers.KindDuplicate:
		if c.Delete {
			return CategoryDeleteRefused
		}
		if c.Upload {
			return CategoryMediaRejected
		}
		return CategoryContentRejected
	case providers.KindRateLimited:
		return CategoryRateLimited
	case providers.KindRetryable:
		return CategoryPlatformUnavailable
	}
	return CategoryInternal
}
