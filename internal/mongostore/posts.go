package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
)

type postDoc struct {
	ID               bson.ObjectID         `bson:"_id,omitempty"`
	OrganizationID   string                `bson:"organizationId"`
	Content          string                `bson:"content"`
	SocialAccountIDs []string              `bson:"socialAccountIds"`
	Variants         map[string]variantDoc `bson:"variants,omitempty"`
	Media            []mediaRefDoc         `bson:"media,omitempty"`
	// MediaIDs is Post.MediaIDs(), kept with every write of the media, so
	// that UsesMedia is one query.
	MediaIDs      []string   `bson:"mediaIds,omitempty"`
	ScheduledAt   *time.Time `bson:"scheduledAt,omitempty"`
	Status        string     `bson:"status"`
	PublishedAt   *time.Time `bson:"publishedAt,omitempty"`
	FailureReason string     `bson:"failureReason,omitempty"`
	FailureCode   string     `bson:"failureCode,omitempty"`
	CreatedAt     time.Time  `bson:"createdAt"`
	UpdatedAt     time.Time  `bson:"updatedAt"`
	// OverdueAnnouncedAt: the post.overdue event went out (OverdueWatch);
	// cleared by each change of the post's state.
	OverdueAnnouncedAt *time.Time `bson:"overdueAnnouncedAt,omitempty"`
	// UnpublishClaim is the post's posts.UnpublishClaim; absent when none
	// is held (a release unsets it: the filters test $exists).
	UnpublishClaim *claimDoc `bson:"unpublishClaim,omitempty"`
}

type claimDoc struct {
	Token string    `bson:"token"`
	RunID string    `bson:"runId,omitempty"`
	At    time.Time `bson:"at"`
}

// variantDoc is a posts.Variant as stored. Media is written as null when
// the variant inherits the post's images and as [] when it sends none: the
// two must not be confused on the way back.
type variantDoc struct {
	Content string         `bson:"content"`
	Media   *[]mediaRefDoc `bson:"media"`
}

type mediaRefDoc struct {
	ID      string `bson:"id"`
	AltText string `bson:"altText,omitempty"`
}

func mediaDocs(refs []posts.MediaRef) []mediaRefDoc {
	if refs == nil {
		return nil
	}
	out := make([]mediaRefDoc, len(refs))
	for i, r := range refs {
		out[i] = mediaRefDoc{ID: r.ID, AltText: r.AltText}
	}
	return out
}

func mediaRefs(docs []mediaRefDoc) []posts.MediaRef {
	if docs == nil {
		return nil
	}
	out := make([]posts.MediaRef, len(docs))
	for i, d := range docs {
		out[i] = posts.MediaRef{ID: d.ID, AltText: d.AltText}
	}
	return out
}

func variantDocs(vs map[string]posts.Variant) map[string]variantDoc {
	if vs == nil {
		return nil
	}
	out := make(map[string]variantDoc, len(vs))
	for id, v := range vs {
		d := variantDoc{Content: v.Content}
		if v.Media != nil {
			m := mediaDocs(*v.Media)
			if m == nil {
				m = []mediaRefDoc{}
			}
			d.Media = &m
		}
		out[id] = d
	}
	return out
}

func variants(docs map[string]variantDoc) map[string]posts.Variant {
	if docs == nil {
		return nil
	}
	out := make(map[string]posts.Variant, len(docs))
	for id, d := range docs {
		v := posts.Variant{Content: d.Content}
		if d.Media != nil {
			m := mediaRefs(*d.Media)
			if m == nil {
				m = []posts.MediaRef{}
			}
			v.Media = &m
		}
		out[id] = v
	}
	return out
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (d *postDoc) post() *posts.Post {
	return &posts.Post{
		ID: d.ID.Hex(), OrganizationID: d.OrganizationID, Content: d.Content,
		SocialAccountIDs: d.SocialAccountIDs, Variants: variants(d.Variants), Media: mediaRefs(d.Media),
		ScheduledAt: utcPtr(d.ScheduledAt), Status: posts.Status(d.Status), PublishedAt: utcPtr(d.PublishedAt),
		FailureReason: d.FailureReason, FailureCode: d.FailureCode,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
}

type resultDoc struct {
	// ID is postId/socialAccountId: one result per (post, account), found
	// by _id alone (FerretDB's only indexed lookup).
	ID              string     `bson:"_id"`
	PostID          string     `bson:"postId"`
	SocialAccountID string     `bson:"socialAccountId"`
	Status          string     `bson:"status"`
	PlatformPostID  string     `bson:"platformPostId,omitempty"`
	PlatformPostURL string     `bson:"platformPostUrl,omitempty"`
	PublishedAt     *time.Time `bson:"publishedAt,omitempty"`
	ErrorCode       string     `bson:"errorCode,omitempty"`
	ErrorMessage    string     `bson:"errorMessage,omitempty"`
	ErrorCategory   string     `bson:"errorCategory,omitempty"`
	Attempts        int        `bson:"attempts"`
	AttemptedAt     *time.Time `bson:"attemptedAt,omitempty"`
	DoubtSince      *time.Time `bson:"doubtSince,omitempty"`
	IdempotencyKey  string     `bson:"idempotencyKey,omitempty"`
	// Media is keyed by media item id, so that keeping an upload is one
	// $set whatever came before.
	Media     map[string]uploadDoc `bson:"media,omitempty"`
	Unpublish *unpublishDoc        `bson:"unpublish,omitempty"`
	UpdatedAt time.Time            `bson:"updatedAt"`
}

type uploadDoc struct {
	PlatformMediaID string     `bson:"platformMediaId"`
	Ref             string     `bson:"ref,omitempty"`
	UploadedAt      time.Time  `bson:"uploadedAt"`
	ExpiresAt       *time.Time `bson:"expiresAt,omitempty"`
	Adjusted        string     `bson:"adjusted,omitempty"`
	Width           int        `bson:"width,omitempty"`
	Height          int        `bson:"height,omitempty"`
}

// Posts is the posts, publishResults and publishAttempts collections.
type Posts struct {
	store    *Store
	posts    *mongo.Collection
	results  *mongo.Collection
	attempts *mongo.Collection
	now      func() time.Time
}

// Posts returns the post store.
func (s *Store) Posts() *Posts {
	return &Posts{store: s, posts: s.DB.Collection("posts"), results: s.DB.Collection("publishResults"),
		attempts: s.DB.Collection("publishAttempts"), now: time.Now}
}

var _ posts.Store = (*Posts)(nil)

func resultID(postID, accountID string) string { return postID + "/" + accountID }

// EnsureIndexes creates the indexes the list page, UsesMedia and
// PostByPlatformID read. A PublishResult is unique per (post, account) by its _id.
func (p *Posts) EnsureIndexes(ctx context.Context) error {
	// One at a time: FerretDB v1 panics on a createIndexes of several
	// indexes when one of them exists already (every restart).
	for _, keys := range []bson.D{
		{{Key: "postId", Value: 1}},
		{{Key: "socialAccountId", Value: 1}, {Key: "platformPostId", Value: 1}},
	} {
		if _, err := p.results.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			return fmt.Errorf("mongo: publishResults indexes: %w", err)
		}
	}
	for _, keys := range []bson.D{
		{{Key: "organizationId", Value: 1}, {Key: "_id", Value: -1}},
		{{Key: "organizationId", Value: 1}, {Key: "mediaIds", Value: 1}}, // UsesMedia
		{{Key: "status", Value: 1}, {Key: "updatedAt", Value: 1}},        // Overdue
	} {
		if _, err := p.posts.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			return fmt.Errorf("mongo: posts indexes: %w", err)
		}
	}
	return nil
}

func (p *Posts) Create(ctx context.Context, post *posts.Post) (*posts.Post, error) {
	d := postDoc{
		OrganizationID: post.OrganizationID, Content: post.Content, SocialAccountIDs: post.SocialAccountIDs,
		Variants: variantDocs(post.Variants), Media: mediaDocs(post.Media), MediaIDs: post.MediaIDs(),
		ScheduledAt: utcPtr(post.ScheduledAt), Status: string(post.Status),
		CreatedAt: post.CreatedAt.UTC(), UpdatedAt: post.UpdatedAt.UTC(),
	}
	res, err := p.posts.InsertOne(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("mongo: create post: %w", err)
	}
	d.ID = res.InsertedID.(bson.ObjectID)
	return d.post(), nil
}

func (p *Posts) findOne(ctx context.Context, filter bson.D) (*posts.Post, error) {
	var d postDoc
	err := p.posts.FindOne(ctx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, posts.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read post: %w", err)
	}
	return d.post(), nil
}

// Get returns the post if it belongs to the organization; read by _id
// alone, as for accounts.
func (p *Posts) Get(ctx context.Context, orgID, id string) (*posts.Post, error) {
	post, err := p.GetByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if post.OrganizationID != orgID {
		return nil, posts.ErrNotFound
	}
	return post, nil
}

func (p *Posts) GetByID(ctx context.Context, id string) (*posts.Post, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, posts.ErrNotFound
	}
	return p.findOne(ctx, bson.D{{Key: "_id", Value: oid}})
}

func (p *Posts) List(ctx context.Context, orgID string, f posts.ListFilter) ([]posts.Post, error) {
	filter := bson.D{{Key: "organizationId", Value: orgID}}
	if f.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: string(f.Status)})
	}
	return newestFirst(ctx, p.posts, filter, f.Limit, f.Before, "posts", (*postDoc).post)
}

func statuses(from []posts.Status) bson.A {
	a := bson.A{}
	for _, s := range from {
		a = append(a, string(s))
	}
	return a
}

// conditional updates the post if its status is one of from, and tells a
// missing post (ErrNotFound) from one in another status (ErrConflict):
// one guarded write. On MongoDB the check and the write are one
// findOneAndUpdate; on FerretDB the post is read, checked and written by
// _id under its lock (a check of a status read earlier let a delete and
// a publish of one draft both succeed, the run publishing a post that no
// longer existed).
func (p *Posts) conditional(ctx context.Context, oid bson.ObjectID, from []posts.Status, update bson.D) (*posts.Post, error) {
	var out *posts.Post
	err := p.guarded(ctx, oid, bson.D{inStatus(from)},
		func(d *postDoc) error {
			if !slices.Contains(from, posts.Status(d.Status)) {
				return posts.ErrConflict
			}
			return nil
		},
		func(filter bson.D) (bool, error) {
			var d postDoc
			err := p.posts.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("mongo: update post: %w", err)
			}
			out = d.post()
			return true, nil
		})
	if errors.Is(err, posts.ErrConflict) {
		return nil, posts.ErrConflict // also after three writes that missed a post that passed
	}
	return out, err
}

func (p *Posts) Update(ctx context.Context, post *posts.Post, from ...posts.Status) (*posts.Post, error) {
	oid, ok := objectID(post.ID)
	if !ok {
		return nil, posts.ErrNotFound
	}
	return p.conditional(ctx, oid, from, bson.D{{Key: "$set", Value: bson.D{
		{Key: "content", Value: post.Content},
		{Key: "socialAccountIds", Value: post.SocialAccountIDs},
		{Key: "variants", Value: variantDocs(post.Variants)},
		{Key: "media", Value: mediaDocs(post.Media)},
		{Key: "mediaIds", Value: mediaIDs(post)},
		{Key: "scheduledAt", Value: utcPtr(post.ScheduledAt)},
		{Key: "status", Value: string(post.Status)},
		{Key: "updatedAt", Value: post.UpdatedAt.UTC()},
	}}, unsetOverdueMark})
}

// unsetOverdueMark is in every update that changes a post's state: the
// post starts afresh, and if it is overdue again it is announced again.
var unsetOverdueMark = bson.E{Key: "$unset", Value: bson.D{{Key: "overdueAnnouncedAt", Value: ""}}}

// mediaIDs is post.MediaIDs() as written by an update: [] rather than
// null when the post uses none, so the field reads the same after every
// write.
func mediaIDs(post *posts.Post) []string {
	if ids := post.MediaIDs(); ids != nil {
		return ids
	}
	return []string{}
}

// holding are the statuses in which a post still needs its media: it has
// not been published and is on its way. A published, failed or cancelled
// post does not hold them (issue 15).
var holding = bson.A{string(posts.StatusDraft), string(posts.StatusScheduled), string(posts.StatusQueued), string(posts.StatusPublishing)}

// UsesMedia reports whether a post of the organization that is still to
// be published (draft, scheduled, queued, publishing) uses mediaID, for
// itself or a variant. MongoDB answers from an index on mediaIds; FerretDB
// v1 scans the posts for this filter, which is acceptable for a library's
// delete, a rare request.
func (p *Posts) UsesMedia(ctx context.Context, orgID, mediaID string) (bool, error) {
	n, err := p.posts.CountDocuments(ctx, bson.D{
		{Key: "organizationId", Value: orgID},
		{Key: "mediaIds", Value: mediaID},
		{Key: "status", Value: bson.D{{Key: "$in", Value: holding}}},
	}, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("mongo: posts using media %s: %w", mediaID, err)
	}
	return n > 0, nil
}

func (p *Posts) SetStatus(ctx context.Context, post *posts.Post, status posts.Status, from ...posts.Status) (*posts.Post, error) {
	oid, ok := objectID(post.ID)
	if !ok {
		return nil, posts.ErrNotFound
	}
	return p.conditional(ctx, oid, from, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: string(status)},
		{Key: "updatedAt", Value: p.now().UTC()},
	}}, unsetOverdueMark})
}

func (p *Posts) Finish(ctx context.Context, id string, status posts.Status, publishedAt *time.Time, reason, code string) error {
	oid, ok := objectID(id)
	if !ok {
		return posts.ErrNotFound
	}
	return p.locked(ctx, oid, func() error {
		res, err := p.posts.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: string(status)},
			{Key: "publishedAt", Value: utcPtr(publishedAt)},
			{Key: "failureReason", Value: reason},
			{Key: "failureCode", Value: code},
			{Key: "updatedAt", Value: p.now().UTC()},
		}}})
		if err != nil {
			return fmt.Errorf("mongo: finish post: %w", err)
		}
		if res.MatchedCount == 0 {
			return posts.ErrNotFound
		}
		return nil
	})
}

// postKey names post oid's lock (serialize).
func postKey(oid bson.ObjectID) string { return "posts/" + oid.Hex() }

// locked runs f, a write of post oid, under the post's lock on FerretDB
// (serialize), where an update is a read then a write of the whole
// document: a write outside the lock could undo one made under it (a
// claim, a status), and one under it an unlocked one (a Finish undone by
// an overdue mark read before it). Every write of a post takes it. On
// MongoDB it runs f as it is.
func (p *Posts) locked(ctx context.Context, oid bson.ObjectID, f func() error) error {
	return p.store.serialize(ctx, postKey(oid), f)
}

func (p *Posts) Delete(ctx context.Context, orgID, id string) error {
	post, err := p.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	oid, _ := objectID(id)
	err = p.locked(ctx, oid, func() error {
		res, err := p.posts.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
		if err != nil {
			return fmt.Errorf("mongo: delete post: %w", err)
		}
		if res.DeletedCount == 0 {
			return posts.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return err
	}
	return p.forget(ctx, post)
}

// forget removes what a deleted post leaves: its results but the
// published ones, and its attempts.
func (p *Posts) forget(ctx context.Context, post *posts.Post) error {
	// Published results stay (ids only, no content): they say whose a
	// platform post is when a later post with the same text is answered
	// "duplicate of" it (PostByPlatformID), so a post in doubt never takes
	// a deleted post's platform post for its own.
	if err := p.ResetResults(ctx, post, posts.ResultPublishing, posts.ResultPending, posts.ResultFailed, posts.ResultUnknown); err != nil {
		return err
	}
	for _, acc := range post.SocialAccountIDs {
		if _, err := p.attempts.DeleteOne(ctx, bson.D{{Key: "_id", Value: resultID(post.ID, acc)}}); err != nil {
			return fmt.Errorf("mongo: delete attempts: %w", err)
		}
	}
	return nil
}

func (d *resultDoc) result() posts.Result {
	r := posts.Result{
		PostID: d.PostID, SocialAccountID: d.SocialAccountID, Status: posts.ResultStatus(d.Status),
		PlatformPostID: d.PlatformPostID, PlatformPostURL: d.PlatformPostURL, PublishedAt: utcPtr(d.PublishedAt),
		ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage, ErrorCategory: posts.Category(d.ErrorCategory), Attempts: d.Attempts, AttemptedAt: utcPtr(d.AttemptedAt), DoubtSince: utcPtr(d.DoubtSince), IdempotencyKey: d.IdempotencyKey, UpdatedAt: d.UpdatedAt.UTC(),
		Unpublish: d.Unpublish.unpublish(),
	}
	for id, u := range d.Media {
		mu := posts.MediaUpload{Upload: providers.Upload{MediaID: id, ID: u.PlatformMediaID, Ref: u.Ref, UploadedAt: u.UploadedAt.UTC()}, Adjusted: u.Adjusted, Width: u.Width, Height: u.Height}
		if u.ExpiresAt != nil {
			mu.ExpiresAt = u.ExpiresAt.UTC()
		}
		r.Media = append(r.Media, mu)
	}
	slices.SortFunc(r.Media, func(a, b posts.MediaUpload) int {
		if c := a.UploadedAt.Compare(b.UploadedAt); c != 0 {
			return c
		}
		return strings.Compare(a.MediaID, b.MediaID)
	})
	r.Explain()
	return r
}

// SaveUpload keeps u under the result's media, by its media item id: one
// $set by _id, the same on MongoDB and FerretDB.
func (p *Posts) SaveUpload(ctx context.Context, postID, accountID string, u posts.MediaUpload) error {
	d := uploadDoc{PlatformMediaID: u.ID, Ref: u.Ref, UploadedAt: u.UploadedAt.UTC(), Adjusted: u.Adjusted, Width: u.Width, Height: u.Height}
	if !u.ExpiresAt.IsZero() {
		at := u.ExpiresAt.UTC()
		d.ExpiresAt = &at
	}
	res, err := p.results.UpdateOne(ctx, bson.D{{Key: "_id", Value: resultID(postID, accountID)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "media." + u.MediaID, Value: d}, {Key: "updatedAt", Value: p.now().UTC()}}}})
	if err != nil {
		return fmt.Errorf("mongo: save upload: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: save upload: no result for post %s and account %s (record the attempt first)", postID, accountID)
	}
	return nil
}

// Results returns the results the post has, one per account, in the
// post's account order.
func (p *Posts) Results(ctx context.Context, post *posts.Post) ([]posts.Result, error) {
	out := []posts.Result{}
	for _, acc := range post.SocialAccountIDs {
		r, err := p.Result(ctx, post.ID, acc)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (p *Posts) Result(ctx context.Context, postID, accountID string) (*posts.Result, error) {
	var d resultDoc
	err := p.results.FindOne(ctx, bson.D{{Key: "_id", Value: resultID(postID, accountID)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read result: %w", err)
	}
	r := d.result()
	return &r, nil
}

// SaveResult upserts the result and adds r.Attempts to its count; r's
// AttemptedAt replaces the stored one when set, and r's DoubtSince the
// stored one when earlier; a published or failed result clears it. A result that says
// published is never overwritten, since the platform has the post: a
// write of another status can race one of published (an activity still
// finishing while its cancelled run records CANCELLED), so on MongoDB that
// guard is part of the write. Writing published needs no guard.
func (p *Posts) SaveResult(ctx context.Context, r *posts.Result) error {
	return p.saveResult(ctx, r, func() (*posts.Result, error) { return p.Result(ctx, r.PostID, r.SocialAccountID) })
}

// RecordFirstAttempt inserts the result as publishing, one attempt at
// `at`, if (post, account) has none: false, nothing written, when it has.
// An insert: atomic on MongoDB and FerretDB alike, and on FerretDB one
// cheap statement where a read and an upsert were two dearer ones.
func (p *Posts) RecordFirstAttempt(ctx context.Context, postID, accountID string, at time.Time, idempotencyKey string) (bool, error) {
	at = at.UTC()
	_, err := p.results.InsertOne(ctx, resultDoc{
		ID: resultID(postID, accountID), PostID: postID, SocialAccountID: accountID,
		Status: string(posts.ResultPublishing), Attempts: 1, AttemptedAt: &at, IdempotencyKey: idempotencyKey, UpdatedAt: p.now().UTC(),
	})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: record attempt: %w", err)
	}
	return true, nil
}

// RecordAttempt saves that an attempt begins: as SaveResult, where
// FerretDB's check is prev, the result as the caller read it. An earlier
// attempt that prev leaves in doubt stays in doubt (DoubtSince).
func (p *Posts) RecordAttempt(ctx context.Context, prev *posts.Result, postID, accountID string, at time.Time) error {
	r := &posts.Result{PostID: postID, SocialAccountID: accountID, Status: posts.ResultPublishing, Attempts: 1, AttemptedAt: &at}
	if prev != nil {
		r.DoubtSince = prev.DoubtStart()
	}
	return p.saveResult(ctx, r, func() (*posts.Result, error) { return prev, nil })
}

// DoubtfulResults returns the results of accountIDs, other than
// exceptPostID's, that are in doubt or unknown: the posts that may hold
// what a duplicate answer names. The rare path again: a scan on FerretDB.
func (p *Posts) DoubtfulResults(ctx context.Context, accountIDs []string, exceptPostID string) ([]posts.Result, error) {
	cur, err := p.results.Find(ctx, bson.D{
		{Key: "socialAccountId", Value: bson.D{{Key: "$in", Value: accountIDs}}},
		{Key: "postId", Value: bson.D{{Key: "$ne", Value: exceptPostID}}},
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{string(posts.ResultPublishing), string(posts.ResultPending), string(posts.ResultUnknown)}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("mongo: find results in doubt: %w", err)
	}
	var docs []resultDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read results in doubt: %w", err)
	}
	var out []posts.Result
	for _, d := range docs {
		if r := d.result(); r.InDoubt() || r.Status == posts.ResultUnknown {
			out = append(out, r)
		}
	}
	return out, nil
}

// PostByPlatformID returns the post, and its account, whose published
// result for one of accountIDs holds platformPostID, or "" if none does.
// A duplicate answer's rare path: on FerretDB, which indexes only _id, it
// scans the results.
func (p *Posts) PostByPlatformID(ctx context.Context, accountIDs []string, platformPostID string) (postID, accountID string, err error) {
	var d resultDoc
	err = p.results.FindOne(ctx, bson.D{
		{Key: "socialAccountId", Value: bson.D{{Key: "$in", Value: accountIDs}}},
		{Key: "platformPostId", Value: platformPostID},
		{Key: "status", Value: string(posts.ResultPublished)},
	}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("mongo: find result by platform id: %w", err)
	}
	return d.PostID, d.SocialAccountID, nil
}

// saveResult writes r; on FerretDB, read says what the stored result is.
func (p *Posts) saveResult(ctx context.Context, r *posts.Result, read func() (*posts.Result, error)) error {
	set := bson.D{
		{Key: "postId", Value: r.PostID},
		{Key: "socialAccountId", Value: r.SocialAccountID},
		{Key: "status", Value: string(r.Status)},
		{Key: "platformPostId", Value: r.PlatformPostID},
		{Key: "platformPostUrl", Value: r.PlatformPostURL},
		{Key: "publishedAt", Value: utcPtr(r.PublishedAt)},
		{Key: "errorCode", Value: r.ErrorCode},
		{Key: "errorMessage", Value: r.ErrorMessage},
		{Key: "errorCategory", Value: string(r.ErrorCategory)},
		{Key: "updatedAt", Value: p.now().UTC()},
	}
	if r.AttemptedAt != nil {
		set = append(set, bson.E{Key: "attemptedAt", Value: r.AttemptedAt.UTC()})
	}
	update := bson.D{
		{Key: "$set", Value: set},
		{Key: "$inc", Value: bson.D{{Key: "attempts", Value: r.Attempts}}},
	}
	switch {
	case r.Status == posts.ResultPublished || r.Status == posts.ResultFailed:
		// Settled: the post is there (published), or nothing of ours is
		// (failed is written only without doubt, or on proof such as a
		// duplicate that is another post's), so no doubt is left.
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "doubtSince", Value: ""}}})
	case r.DoubtSince != nil:
		// A doubt, once raised, is kept, from its earliest attempt.
		update = append(update, bson.E{Key: "$min", Value: bson.D{{Key: "doubtSince", Value: r.DoubtSince.UTC()}}})
	}
	filter := bson.D{{Key: "_id", Value: resultID(r.PostID, r.SocialAccountID)}}
	if r.Status != posts.ResultPublished {
		if p.store.isFerretDB(ctx) {
			// FerretDB would scan the collection for the guarded filter
			// and still check and write in two steps: read by _id, then
			// write by _id (a known dev-only race).
			prev, err := read()
			if err != nil {
				return err
			}
			if prev != nil && prev.Status == posts.ResultPublished {
				return nil
			}
		} else {
			filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$ne", Value: string(posts.ResultPublished)}}})
		}
	}
	_, err := p.results.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// The guarded filter missed a published result, and the upsert
		// then met its _id: nothing to change.
		return nil
	}
	if err != nil {
		return fmt.Errorf("mongo: save result: %w", err)
	}
	return nil
}

// ResetResults forgets the post's results whose status is one of only, or
// all of them, for a post published again.
func (p *Posts) ResetResults(ctx context.Context, post *posts.Post, only ...posts.ResultStatus) error {
	for _, acc := range post.SocialAccountIDs {
		if len(only) > 0 {
			r, err := p.Result(ctx, post.ID, acc)
			if err != nil {
				return err
			}
			if r == nil || !slices.Contains(only, r.Status) {
				continue
			}
		}
		if _, err := p.results.DeleteOne(ctx, bson.D{{Key: "_id", Value: resultID(post.ID, acc)}}); err != nil {
			return fmt.Errorf("mongo: reset results: %w", err)
		}
	}
	return nil
}

// unpublishDoc is a result's unpublish (posts.Unpublish).
type unpublishDoc struct {
	Status        string     `bson:"status"`
	UnpublishedAt *time.Time `bson:"unpublishedAt,omitempty"`
	ErrorCode     string     `bson:"errorCode,omitempty"`
	ErrorMessage  string     `bson:"errorMessage,omitempty"`
	ErrorCategory string     `bson:"errorCategory,omitempty"`
	Attempts      int        `bson:"attempts"`
	AttemptedAt   *time.Time `bson:"attemptedAt,omitempty"`
}

func (d *unpublishDoc) unpublish() *posts.Unpublish {
	if d == nil {
		return nil
	}
	return &posts.Unpublish{Status: posts.UnpublishStatus(d.Status), UnpublishedAt: utcPtr(d.UnpublishedAt), ErrorCode: d.ErrorCode,
		ErrorMessage: d.ErrorMessage, ErrorCategory: posts.Category(d.ErrorCategory), Attempts: d.Attempts, AttemptedAt: utcPtr(d.AttemptedAt)}
}

// RecordUnpublishAttempt is one update by _id: the caller read the result
// and checked that it is published.
func (p *Posts) RecordUnpublishAttempt(ctx context.Context, postID, accountID string, at time.Time) error {
	return p.updateUnpublish(ctx, postID, accountID, bson.D{
		{Key: "$set", Value: bson.D{{Key: "unpublish.status", Value: string(posts.UnpublishRunning)},
			{Key: "unpublish.attemptedAt", Value: at.UTC()}, {Key: "updatedAt", Value: p.now().UTC()}}},
		{Key: "$inc", Value: bson.D{{Key: "unpublish.attempts", Value: 1}}},
		{Key: "$unset", Value: bson.D{{Key: "unpublish.errorCode", Value: ""}, {Key: "unpublish.errorMessage", Value: ""},
			{Key: "unpublish.errorCategory", Value: ""}}},
	})
}

// FinishUnpublish is one update by _id.
func (p *Posts) FinishUnpublish(ctx context.Context, postID, accountID string, u posts.Unpublish) error {
	set := bson.D{{Key: "unpublish.status", Value: string(u.Status)}, {Key: "unpublish.unpublishedAt", Value: utcPtr(u.UnpublishedAt)},
		{Key: "unpublish.errorCode", Value: u.ErrorCode}, {Key: "unpublish.errorMessage", Value: u.ErrorMessage},
		{Key: "unpublish.errorCategory", Value: string(u.ErrorCategory)}, {Key: "updatedAt", Value: p.now().UTC()}}
	return p.updateUnpublish(ctx, postID, accountID, bson.D{{Key: "$set", Value: set}})
}

func (p *Posts) updateUnpublish(ctx context.Context, postID, accountID string, update bson.D) error {
	res, err := p.results.UpdateOne(ctx, bson.D{{Key: "_id", Value: resultID(postID, accountID)}}, update)
	if err != nil {
		return fmt.Errorf("mongo: unpublish of post %s, account %s: %w", postID, accountID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: unpublish of post %s, account %s: %w", postID, accountID, posts.ErrNotFound)
	}
	return nil
}

func (d *claimDoc) claim() posts.UnpublishClaim {
	return posts.UnpublishClaim{Token: d.Token, RunID: d.RunID, At: d.At.UTC()}
}

// unclaimed is the filter of a post that holds no unpublish claim but the
// one of token takeOver ("": none); checkUnclaimed its check of a
// document read.
func unclaimed(takeOver string) bson.E {
	free := bson.D{{Key: "unpublishClaim", Value: bson.D{{Key: "$exists", Value: false}}}}
	if takeOver == "" {
		return free[0]
	}
	return bson.E{Key: "$or", Value: bson.A{free, bson.D{{Key: "unpublishClaim.token", Value: takeOver}}}}
}

func checkUnclaimed(d *postDoc, takeOver string) error {
	if d.UnpublishClaim == nil || takeOver != "" && d.UnpublishClaim.Token == takeOver {
		return nil
	}
	return &posts.ClaimedError{Claim: d.UnpublishClaim.claim()}
}

// inStatus is the filter of a post whose status is one of from;
// checkStatus its check.
func inStatus(from []posts.Status) bson.E {
	return bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses(from)}}}
}

func checkStatus(d *postDoc, from []posts.Status) error {
	if slices.Contains(from, posts.Status(d.Status)) {
		return nil
	}
	return &posts.StatusError{Status: posts.Status(d.Status), Want: from}
}

// errNoChange: a guarded write's check found nothing to do (a release
// of a claim the post no longer holds).
var errNoChange = errors.New("mongo: nothing to change")

// guarded writes post oid if check passes on it, atomically
// (checkedWrite, under the post's lock on FerretDB): filter is check's
// condition as MongoDB's filter. write reports whether it matched.
func (p *Posts) guarded(ctx context.Context, oid bson.ObjectID, filter bson.D, check func(*postDoc) error, write func(filter bson.D) (bool, error)) error {
	byID := bson.D{{Key: "_id", Value: oid}}
	why := func() error {
		var d postDoc
		err := p.posts.FindOne(ctx, byID).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return posts.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("mongo: read post %s: %w", oid.Hex(), err)
		}
		return check(&d)
	}
	return p.store.checkedWrite(ctx, postKey(oid), byID, filter, why, write,
		fmt.Errorf("mongo: post %s changed under three writes in a row: %w", oid.Hex(), posts.ErrConflict))
}

// ClaimUnpublish sets c as the claim of a published or failed post that
// holds none (or takeOver's): one conditional write (guarded).
func (p *Posts) ClaimUnpublish(ctx context.Context, postID string, c posts.UnpublishClaim, takeOver string) error {
	oid, ok := objectID(postID)
	if !ok {
		return posts.ErrNotFound
	}
	from := []posts.Status{posts.StatusPublished, posts.StatusFailed}
	doc := claimDoc{Token: c.Token, RunID: c.RunID, At: c.At.UTC()}
	return p.guarded(ctx, oid, bson.D{unclaimed(takeOver), inStatus(from)},
		func(d *postDoc) error {
			// The claim first: an unpublish running is the answer
			// whatever a retry did to the status meanwhile.
			if err := checkUnclaimed(d, takeOver); err != nil {
				return err
			}
			return checkStatus(d, from)
		},
		func(filter bson.D) (bool, error) {
			res, err := p.posts.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "unpublishClaim", Value: doc}}}})
			if err != nil {
				return false, fmt.Errorf("mongo: claim post %s: %w", postID, err)
			}
			return res.MatchedCount == 1, nil
		})
}

// NameUnpublishRun records runID in the claim of token.
func (p *Posts) NameUnpublishRun(ctx context.Context, postID, token, runID string) error {
	oid, ok := objectID(postID)
	if !ok {
		return posts.ErrNotFound
	}
	return p.guarded(ctx, oid, bson.D{{Key: "unpublishClaim.token", Value: token}},
		func(d *postDoc) error {
			if d.UnpublishClaim == nil || d.UnpublishClaim.Token != token {
				return fmt.Errorf("mongo: post %s no longer holds claim %s: %w", postID, token, posts.ErrNotFound)
			}
			return nil
		},
		func(filter bson.D) (bool, error) {
			res, err := p.posts.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "unpublishClaim.runId", Value: runID}}}})
			if err != nil {
				return false, fmt.Errorf("mongo: name the run of post %s's claim: %w", postID, err)
			}
			return res.MatchedCount == 1, nil
		})
}

// ReleaseUnpublish unsets the claim of token or of runID, if the post
// holds it.
func (p *Posts) ReleaseUnpublish(ctx context.Context, postID, token, runID string) error {
	oid, ok := objectID(postID)
	if !ok || token == "" && runID == "" {
		return nil
	}
	key, want := "unpublishClaim.token", token
	if token == "" {
		key, want = "unpublishClaim.runId", runID
	}
	err := p.guarded(ctx, oid, bson.D{{Key: key, Value: want}},
		func(d *postDoc) error {
			c := d.UnpublishClaim
			if c == nil || token != "" && c.Token != token || token == "" && c.RunID != runID {
				return errNoChange
			}
			return nil
		},
		func(filter bson.D) (bool, error) {
			res, err := p.posts.UpdateOne(ctx, filter, bson.D{{Key: "$unset", Value: bson.D{{Key: "unpublishClaim", Value: ""}}}})
			if err != nil {
				return false, fmt.Errorf("mongo: release post %s's claim: %w", postID, err)
			}
			return res.MatchedCount == 1, nil
		})
	if errors.Is(err, errNoChange) || errors.Is(err, posts.ErrNotFound) {
		return nil
	}
	return err
}

// SetStatusIf is SetStatus checking the stored status and the post's
// claim in one conditional write (guarded), on MongoDB and FerretDB; a
// stale claim taken over is cleared.
func (p *Posts) SetStatusIf(ctx context.Context, post *posts.Post, status posts.Status, takeOver string, from ...posts.Status) (*posts.Post, error) {
	oid, ok := objectID(post.ID)
	if !ok {
		return nil, posts.ErrNotFound
	}
	var out *posts.Post
	err := p.guarded(ctx, oid, bson.D{unclaimed(takeOver), inStatus(from)},
		func(d *postDoc) error {
			if err := checkUnclaimed(d, takeOver); err != nil {
				return err
			}
			return checkStatus(d, from)
		},
		func(filter bson.D) (bool, error) {
			var d postDoc
			err := p.posts.FindOneAndUpdate(ctx, filter, bson.D{
				{Key: "$set", Value: bson.D{{Key: "status", Value: string(status)}, {Key: "updatedAt", Value: p.now().UTC()}}},
				{Key: "$unset", Value: bson.D{{Key: "overdueAnnouncedAt", Value: ""}, {Key: "unpublishClaim", Value: ""}}},
			}, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("mongo: update post %s: %w", post.ID, err)
			}
			out = d.post()
			return true, nil
		})
	return out, err
}

// DeleteIf is Delete checking the stored status and the post's claim in
// one conditional delete (guarded).
func (p *Posts) DeleteIf(ctx context.Context, orgID, id, takeOver string, from ...posts.Status) error {
	post, err := p.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	oid, _ := objectID(id)
	err = p.guarded(ctx, oid, bson.D{unclaimed(takeOver), inStatus(from)},
		func(d *postDoc) error {
			if err := checkUnclaimed(d, takeOver); err != nil {
				return err
			}
			return checkStatus(d, from)
		},
		func(filter bson.D) (bool, error) {
			res, err := p.posts.DeleteOne(ctx, filter)
			if err != nil {
				return false, fmt.Errorf("mongo: delete post %s: %w", id, err)
			}
			return res.DeletedCount == 1, nil
		})
	if err != nil {
		return err
	}
	return p.forget(ctx, post)
}
