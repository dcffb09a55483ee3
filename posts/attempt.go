package posts

import (
	"strconv"
	"time"
)

// The rules of "may we post again?" for one account of one post. Every
// provider's answers pass through them (activities.PublishToAccount), so
// a network's own rules (its limits, its lever for exactly-once, its error
// mapping) stay in its provider and these stay here, testable without a
// platform or Temporal.

// InDoubt says whether an attempt may have published to the account
// without PostFlow knowing it: one was recorded and its outcome never was
// (status publishing: the worker died, or the answer was lost), or an
// earlier one's answer left it so (DoubtSince) and nothing has proved
// what it did since. Only proof settles a doubt: the platform's post, a
// duplicate answer naming it, or a read of it. A later refusal, timeout or
// auth failure does not, since it says nothing of the earlier attempt.
func (r *Result) InDoubt() bool {
	return r != nil && (r.Status == ResultPublishing || r.DoubtSince != nil)
}

// DoubtStart is when the earliest attempt in doubt began: the earliest of
// DoubtSince and, when the last attempt's outcome was never recorded, its
// AttemptedAt. Nil when nothing is in doubt, or when an attempt in doubt
// has no time (an old record): then no window can vouch for a repeat.
func (r *Result) DoubtStart() *time.Time {
	if !r.InDoubt() {
		return nil
	}
	start := r.DoubtSince
	if r.Status == ResultPublishing && r.AttemptedAt != nil && (start == nil || r.AttemptedAt.Before(*start)) {
		start = r.AttemptedAt
	}
	return start
}

// MayRepeat says whether a new attempt may call the platform, given the
// result earlier attempts left (nil: none) and how long the platform
// answers a repeat with the post an earlier attempt made (Lever.Window).
// Without doubt, always. In doubt, only while the earliest attempt in
// doubt is inside that window: a repeat then either makes the post or is
// answered with the one that attempt made. Past it, the outcome is
// unknown and a repeat could post twice.
func MayRepeat(prev *Result, window time.Duration, now time.Time) bool {
	if !prev.InDoubt() {
		return true
	}
	start := prev.DoubtStart()
	return start != nil && window > 0 && now.Sub(*start) < window
}

// Settled says whether earlier attempts decided the account for good, so
// that no attempt calls the platform again by itself. Published: the
// platform has the post, and posting again would duplicate it. Unknown:
// publishing again is an operator's decision (POST /posts/{id}/retry
// naming the account), not an automatic retry's.
func (r *Result) Settled() bool {
	return r != nil && (r.Status == ResultPublished || r.Status == ResultUnknown)
}

// Lever is what a network offers against a second post after a lost
// answer, as plain values, so that these rules need no provider.
type Lever struct {
	// Window is how long after an attempt in doubt a repeat is answered
	// with the post that attempt made (providers.ExactlyOnce's
	// ReconcileWindow); 0: never.
	Window time.Duration
	// ReadBack: the network can be asked whether it holds the attempt's
	// post, which settles a doubt past any window.
	ReadBack bool
}

// Step is what an attempt to publish to an account does next, given what
// earlier attempts left.
type Step int

const (
	// StepFirst: no earlier attempt; call the platform.
	StepFirst Step = iota + 1
	// StepSettled: an earlier attempt settled the account (Settled): its
	// outcome stands, whatever this attempt would meet.
	StepSettled
	// StepReadBack: an earlier attempt is in doubt and the network can be
	// read: what it holds settles the doubt; if it holds none, the
	// attempt in doubt made nothing and a repeat is safe.
	StepReadBack
	// StepRepeat: call the platform again, with the earlier attempt's
	// idempotency key: nothing is in doubt, or the lever's window vouches
	// for the repeat (MayRepeat).
	StepRepeat
	// StepUnknown: an earlier attempt is in doubt and nothing can tell
	// what it did: the outcome is unknown, and the platform is not called.
	StepUnknown
)

func (s Step) String() string {
	switch s {
	case StepFirst:
		return "first"
	case StepSettled:
		return "settled"
	case StepReadBack:
		return "read back"
	case StepRepeat:
		return "repeat"
	case StepUnknown:
		return "unknown"
	}
	return "Step(" + strconv.Itoa(int(s)) + ")"
}

// NextStep decides "may we post again?" for one account of one post,
// given prev, the result earlier attempts left (nil: none), the network's
// lever and the time now. A failed or refused (pending) attempt made
// nothing, so it may go again; an attempt in doubt only through the lever.
func NextStep(prev *Result, lever Lever, now time.Time) Step {
	switch {
	case prev == nil:
		return StepFirst
	case prev.Settled():
		return StepSettled
	case prev.InDoubt() && lever.ReadBack:
		return StepReadBack
	case !MayRepeat(prev, lever.Window, now):
		return StepUnknown
	default:
		return StepRepeat
	}
}

// Duplicate is what a platform's "duplicate" answer means for one account
// of one post.
type Duplicate int

const (
	// DuplicateOfOurs: the post the platform names is this account's own
	// for this post, made by an earlier attempt whose answer was lost; the
	// account is published with it.
	DuplicateOfOurs Duplicate = iota + 1
	// DuplicateOfOther: the platform holds the same content as another
	// post (another PostFlow post, or one made outside PostFlow), and
	// refused this one: it fails with DUPLICATE_CONTENT.
	DuplicateOfOther
	// DuplicateUnknown: an earlier attempt is in doubt and the platform
	// does not say which post it holds: it may be ours, or another.
	DuplicateUnknown
)

// DuplicateAnswer is what is known when a platform answers that it
// already holds a post's content.
type DuplicateAnswer struct {
	// PostID is this PostFlow post; ExistingPostID the platform post the
	// answer names ("" if it names none).
	PostID, ExistingPostID string
	// ClaimedBy is the PostFlow post whose published result for this
	// account holds ExistingPostID ("" if none).
	ClaimedBy string
	// Keyed: the repeat carried the idempotency key of the attempt in
	// doubt, inside the window the platform keeps keys. Had that attempt
	// made a post, the platform would have answered with it, so the post
	// it names is another's.
	Keyed bool
	// Rivals: another post of this account with the same text has an
	// attempt in doubt or an unknown outcome, so the post named may be
	// that one's as well as this one's.
	Rivals bool
}

// JudgeDuplicate decides what a duplicate answer means, given prev, the
// result earlier attempts left (nil: none).
//
// A duplicate answer is proof of our own post only when this account's
// own earlier attempt for this post is in doubt, the post it names is no
// other post's, and nothing else could have made it: without doubt,
// nothing of ours can be there; with a key the platform honours, ours
// would have been answered with; with a rival in doubt, either may own it.
func JudgeDuplicate(prev *Result, d DuplicateAnswer) Duplicate {
	switch {
	case d.ClaimedBy != "" && d.ClaimedBy != d.PostID:
		return DuplicateOfOther
	case !prev.InDoubt(), d.Keyed:
		return DuplicateOfOther
	case d.ExistingPostID == "", d.Rivals:
		return DuplicateUnknown
	default:
		return DuplicateOfOurs
	}
}

// ErrorCodeDuplicateContent is the result's errorCode when the platform
// refused a post as a repeat of another it holds (JudgeDuplicate's
// DuplicateOfOther), whatever the platform's own code for it.
const ErrorCodeDuplicateContent = "DUPLICATE_CONTENT"
