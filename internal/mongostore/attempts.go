package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/posts"
)

// attemptsDoc holds the attempts of one (post, account), oldest first,
// under the result's _id (postId/socialAccountId): one document read and
// written by _id alone, which FerretDB indexes.
type attemptsDoc struct {
	ID              string       `bson:"_id"`
	PostID          string       `bson:"postId"`
	SocialAccountID string       `bson:"socialAccountId"`
	Attempts        []attemptDoc `bson:"attempts"`
}

type attemptDoc struct {
	At             time.Time  `bson:"at"`
	Step           string     `bson:"step"`
	Outcome        string     `bson:"outcome"`
	HTTPStatus     int        `bson:"httpStatus,omitempty"`
	Code           string     `bson:"code,omitempty"`
	Message        string     `bson:"message,omitempty"`
	ErrorCategory  string     `bson:"errorCategory,omitempty"`
	WaitUntil      *time.Time `bson:"waitUntil,omitempty"`
	PlatformPostID string     `bson:"platformPostId,omitempty"`
}

// AppendAttempt pushes a onto the attempts of (post, account), keeping
// the last posts.MaxAttemptsKept. MongoDB trims in the push ($slice).
// FerretDB v1 ignores $slice, so there the push returns the document and
// the oldest extra attempts are popped ($pop) after it.
func (p *Posts) AppendAttempt(ctx context.Context, postID, accountID string, a posts.Attempt) error {
	d := attemptDoc{At: a.At.UTC(), Step: string(a.Step), Outcome: string(a.Outcome), HTTPStatus: a.HTTPStatus,
		Code: a.Code, Message: a.Message, ErrorCategory: string(a.ErrorCategory), WaitUntil: utcPtr(a.WaitUntil),
		PlatformPostID: a.PlatformPostID}
	id := resultID(postID, accountID)
	filter := bson.D{{Key: "_id", Value: id}}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "postId", Value: postID}, {Key: "socialAccountId", Value: accountID}}},
		{Key: "$push", Value: bson.D{{Key: "attempts", Value: bson.D{
			{Key: "$each", Value: bson.A{d}}, {Key: "$slice", Value: -posts.MaxAttemptsKept},
		}}}},
	}
	if !p.store.isFerretDB(ctx) {
		if _, err := p.attempts.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true)); err != nil {
			return fmt.Errorf("mongo: append attempt: %w", err)
		}
		return nil
	}
	var got attemptsDoc
	err := p.attempts.FindOneAndUpdate(ctx, filter, update,
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
	if err != nil {
		return fmt.Errorf("mongo: append attempt: %w", err)
	}
	for extra := len(got.Attempts) - posts.MaxAttemptsKept; extra > 0; extra-- {
		if _, err := p.attempts.UpdateOne(ctx, filter, bson.D{{Key: "$pop", Value: bson.D{{Key: "attempts", Value: -1}}}}); err != nil {
			return fmt.Errorf("mongo: trim attempts: %w", err)
		}
	}
	return nil
}

// Attempts returns the attempts of (post, account), oldest first.
func (p *Posts) Attempts(ctx context.Context, postID, accountID string) ([]posts.Attempt, error) {
	var d attemptsDoc
	err := p.attempts.FindOne(ctx, bson.D{{Key: "_id", Value: resultID(postID, accountID)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return []posts.Attempt{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read attempts: %w", err)
	}
	out := make([]posts.Attempt, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		out = append(out, posts.Attempt{At: a.At.UTC(), Step: posts.AttemptStep(a.Step), Outcome: posts.AttemptOutcome(a.Outcome),
			HTTPStatus: a.HTTPStatus, Code: a.Code, Message: a.Message, ErrorCategory: posts.Category(a.ErrorCategory),
			WaitUntil: utcPtr(a.WaitUntil), PlatformPostID: a.PlatformPostID})
	}
	return out, nil
}
