package mongostore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/posts"
)

var _ posts.OverdueStore = (*Posts)(nil)

// unfinished are the states a post is in until its run ends.
var unfinished = bson.A{string(posts.StatusScheduled), string(posts.StatusQueued), string(posts.StatusPublishing)}

// overdueFilter selects the posts not in a final state whose due time,
// the later of scheduledAt and updatedAt, is before cutoff. updatedAt
// moves with every change of state (the trigger, the run taking the post
// up), so a post published now is due from its trigger. Served by the
// (status, updatedAt) index.
func overdueFilter(cutoff time.Time, unannounced bool) bson.D {
	f := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: unfinished}}},
		{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "scheduledAt", Value: nil}},
			bson.D{{Key: "scheduledAt", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}}},
		}},
	}
	if unannounced {
		f = append(f, bson.E{Key: "overdueAnnouncedAt", Value: nil})
	}
	return f
}

// Overdue lists the overdue posts (posts.OverdueStore), longest overdue
// first: the store picks by updatedAt, then they are sorted by due time.
func (p *Posts) Overdue(ctx context.Context, cutoff time.Time, unannounced bool, limit int) ([]posts.Overdue, error) {
	cur, err := p.posts.Find(ctx, overdueFilter(cutoff, unannounced), options.Find().
		SetSort(bson.D{{Key: "updatedAt", Value: 1}}).SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "content", Value: 0}, {Key: "variants", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: overdue posts: %w", err)
	}
	var docs []postDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: overdue posts: %w", err)
	}
	out := make([]posts.Overdue, 0, len(docs))
	for _, d := range docs {
		due := d.UpdatedAt.UTC()
		if d.ScheduledAt != nil && d.ScheduledAt.After(due) {
			due = d.ScheduledAt.UTC()
		}
		out = append(out, posts.Overdue{ID: d.ID.Hex(), OrganizationID: d.OrganizationID, Status: posts.Status(d.Status),
			ScheduledAt: utcPtr(d.ScheduledAt), DueAt: due, AnnouncedAt: utcPtr(d.OverdueAnnouncedAt)})
	}
	slices.SortStableFunc(out, func(a, b posts.Overdue) int { return a.DueAt.Compare(b.DueAt) })
	return out, nil
}

// CountOverdue counts the overdue posts (posts.OverdueStore).
func (p *Posts) CountOverdue(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := p.posts.CountDocuments(ctx, overdueFilter(cutoff, false))
	if err != nil {
		return 0, fmt.Errorf("mongo: count overdue posts: %w", err)
	}
	return int(n), nil
}

// MarkOverdueAnnounced records that o's post.overdue event went out
// (posts.OverdueStore), if the post is still in o's status and has not
// changed state since (updatedAt, which every change of state moves, is
// not past o.DueAt). A post that is gone has nothing to mark.
func (p *Posts) MarkOverdueAnnounced(ctx context.Context, o posts.Overdue, at time.Time) error {
	oid, ok := objectID(o.ID)
	if !ok {
		return nil
	}
	filter := bson.D{{Key: "_id", Value: oid}, {Key: "status", Value: string(o.Status)},
		{Key: "updatedAt", Value: bson.D{{Key: "$lte", Value: o.DueAt.UTC()}}}}
	// Under the post's lock on FerretDB, whose filtered update is a check
	// then a write: a state change between them would be marked.
	return p.locked(ctx, oid, func() error {
		if _, err := p.posts.UpdateOne(ctx, filter,
			bson.D{{Key: "$set", Value: bson.D{{Key: "overdueAnnouncedAt", Value: at.UTC()}}}}); err != nil {
			return fmt.Errorf("mongo: mark post %s overdue: %w", o.ID, err)
		}
		return nil
	})
}
