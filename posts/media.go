package posts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/ids"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/providers"
)

// MaxMedia bounds one list of images (the post's, or a variant's): more
// than any network takes (LinkedIn's 20 in a multi-image post, contracts
// §1.5), so that a list longer than that is a mistake, said at once.
const MaxMedia = 20

// MaxAltTextBytes bounds an image's alt text in UTF-8 bytes, whatever its
// networks take (their own limits are checked per account, in their unit).
const MaxAltTextBytes = 5000

// MediaItems finds the organization's media library items a post may
// name: mongostore.Media.Usable in production.
type MediaItems interface {
	// Get returns the item if it belongs to orgID and no delete of it is
	// under way (media.Library.Delete marks it first); media.ErrNotFound
	// otherwise.
	Get(ctx context.Context, orgID, id string) (*media.Item, error)
}

// MediaRejection is the details of a 422 media_rejected: which image, in
// which list, cannot go to which account, by which of its network's rules
// (providers.MediaRules, by JSON name), with the limit and the image's
// value.
type MediaRejection struct {
	// MediaID is the image's id in the media library.
	MediaID string `json:"mediaId"`
	// Field is where the image is named in the post: "media[1]" or
	// "variants.<accountId>.media[0]"; Index its position in that list
	// (0-based).
	Field string `json:"field"`
	Index int    `json:"index"`
	// AccountID is the account that would get the image, on Platform (a
	// provider id: "bluesky").
	AccountID string `json:"accountId"`
	Platform  string `json:"platform"`
	// Rule is the MediaRules field: maxImages, types, maxBytes, maxPixels
	// or altText.
	Rule string `json:"rule"`
	// Limit is the rule's limit (a number; for types, the list of types);
	// Value is the image's (for maxImages, the number of images).
	Limit any `json:"limit"`
	Value any `json:"value"`
	// Unit says what Limit and Value count: images, bytes, pixels, or the
	// alt text's unit ("characters").
	Unit string `json:"unit,omitempty"`
}

// MediaNotFound is the details of a 422 media_not_found.
type MediaNotFound struct {
	MediaID string `json:"mediaId"`
	Field   string `json:"field"`
}

// mediaField names list i of p: the post's ("media"), or the variant's of
// account ("variants.<id>.media").
func mediaField(account string) string {
	if account == "" {
		return "media"
	}
	return "variants." + account + ".media"
}

// mediaLists are p's lists of images, the post's first, then its
// variants' in the order of its accounts, each with the account it is for
// ("" for the post's).
func mediaLists(p *Post) (accounts []string, lists [][]MediaRef) {
	accounts, lists = []string{""}, [][]MediaRef{p.Media}
	for _, id := range p.SocialAccountIDs {
		if v, ok := p.Variants[id]; ok && v.Media != nil {
			accounts = append(accounts, id)
			lists = append(lists, *v.Media)
		}
	}
	return accounts, lists
}

// canonicalMedia brings every media id of p to its one spelling
// (ids.Parse), in place, and refuses, as Malformed, a list that names an
// image twice or holds more than MaxMedia, and an alt text over
// MaxAltTextBytes or holding what a post's text may not (checkChars). It
// runs after canonicalIDs, so variants are keyed by canonical account ids.
func canonicalMedia(p *Post) error {
	accounts, lists := mediaLists(p)
	for l, refs := range lists {
		field := mediaField(accounts[l])
		if len(refs) > MaxMedia {
			return &InvalidError{Kind: Malformed, Code: "too_many_media",
				Message: fmt.Sprintf("%s holds %d images; a list holds at most %d.", field, len(refs), MaxMedia)}
		}
		seen := map[string]int{}
		for i := range refs {
			at := fmt.Sprintf("%s[%d]", field, i)
			id, err := ids.Parse(refs[i].ID)
			if err != nil {
				return &InvalidError{Kind: Malformed, Code: "invalid_id", Message: fmt.Sprintf("%s.id is not a media id (24 hex digits).", at)}
			}
			if j, ok := seen[id]; ok {
				return &InvalidError{Kind: Malformed, Code: "duplicate_media",
					Message: fmt.Sprintf("%s names image %s again (as %s[%d] did); a post shows an image once.", at, id, field, j)}
			}
			seen[id] = i
			refs[i].ID = id
			if err := checkAltText(at, refs[i].AltText); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAltText refuses alt text over MaxAltTextBytes, with characters a
// post's text may not hold, or with nothing visible (leave it out
// instead); "" is no alt text and taken. at names the image ("media[0]").
func checkAltText(at, alt string) error {
	if alt == "" {
		return nil
	}
	if len(alt) > MaxAltTextBytes {
		return &InvalidError{Kind: Malformed, Code: "invalid_alt_text",
			Message: fmt.Sprintf("%s.altText is %d bytes; alt text is at most %d bytes (UTF-8).", at, len(alt), MaxAltTextBytes)}
	}
	visible, err := checkChars("alt text of "+at, alt)
	var inv *InvalidError
	if errors.As(err, &inv) {
		inv.Code = "invalid_alt_text"
		return inv
	}
	if !visible {
		return &InvalidError{Kind: Malformed, Code: "invalid_alt_text",
			Message: fmt.Sprintf("%s.altText has no visible character; leave it out if the image has none.", at)}
	}
	return nil
}

// mediaItems reads every image p names, once each, from the
// organization's library: an id it does not hold (another organization's
// included) is a 422 media_not_found naming the first place the post
// names it. Every list is checked, even one no account gets: a variant
// removed later falls back to the post's.
func (s *Service) mediaItems(ctx context.Context, p *Post) (map[string]*media.Item, error) {
	items := map[string]*media.Item{}
	accounts, lists := mediaLists(p)
	for l, refs := range lists {
		for i, r := range refs {
			if _, ok := items[r.ID]; ok {
				continue
			}
			var item *media.Item
			err := media.ErrNotFound
			if s.media != nil {
				item, err = s.media.Get(ctx, p.OrganizationID, r.ID)
			}
			if errors.Is(err, media.ErrNotFound) {
				at := fmt.Sprintf("%s[%d]", mediaField(accounts[l]), i)
				return nil, &InvalidError{Kind: Unacceptable, Code: "media_not_found",
					Message: fmt.Sprintf("%s names image %s, which is not in this organization's media library.", at, r.ID),
					Details: MediaNotFound{MediaID: r.ID, Field: at}}
			}
			if err != nil {
				return nil, fmt.Errorf("media item %s: %w", r.ID, err)
			}
			items[r.ID] = item
		}
	}
	return items, nil
}

// checkMedia checks the images account a would get from p against its
// network's rules for it (prov.MediaLimits): a 422 media_rejected names
// the first image that breaks one. Rules the network leaves unknown (an
// error reading them, a zero limit, no types listed) are not checked: the
// network decides, as for text. MaxImages is always known: 0 means the
// provider attaches no images.
func checkMedia(ctx context.Context, p *Post, a *connections.Account, prov providers.Provider, items map[string]*media.Item) error {
	refs := p.MediaFor(a.ID)
	if len(refs) == 0 {
		return nil
	}
	rules, err := prov.MediaLimits(ctx, a.Provider(""))
	if err != nil {
		return nil // unknown now: the network's own refusal is the answer
	}
	field := mediaField("")
	if v, ok := p.Variants[a.ID]; ok && v.Media != nil {
		field = mediaField(a.ID)
	}
	reject := func(i int, rule string, limit, value any, unit, why string) error {
		at := fmt.Sprintf("%s[%d]", field, i)
		return &InvalidError{Kind: Unacceptable, Code: "media_rejected",
			Message: fmt.Sprintf("Image %d (%s, id %s) cannot go to %s (account %s): %s.", i+1, at, refs[i].ID, a.DisplayName, a.ID, why),
			Details: MediaRejection{MediaID: refs[i].ID, Field: at, Index: i, AccountID: a.ID, Platform: a.Platform,
				Rule: rule, Limit: limit, Value: value, Unit: unit}}
	}
	name := prov.Name()
	if rules.MaxImages == 0 {
		return reject(0, "maxImages", 0, len(refs), "images", name+" takes no images from PostFlow")
	}
	if len(refs) > rules.MaxImages {
		return reject(rules.MaxImages, "maxImages", rules.MaxImages, len(refs), "images",
			fmt.Sprintf("the account would get %d images and %s takes at most %d on a post", len(refs), name, rules.MaxImages))
	}
	for i, r := range refs {
		item := items[r.ID]
		switch pixels := int64(item.Width) * int64(item.Height); {
		case len(rules.Types) > 0 && !slices.Contains(rules.Types, item.Type):
			return reject(i, "types", rules.Types, item.Type, "",
				fmt.Sprintf("it is %s and %s takes %s", item.Type, name, strings.Join(rules.Types, ", ")))
		case rules.MaxBytes > 0 && item.Size > rules.MaxBytes && !rules.Downscale:
			return reject(i, "maxBytes", rules.MaxBytes, item.Size, "bytes",
				fmt.Sprintf("it is %d bytes and %s takes at most %d bytes per image", item.Size, name, rules.MaxBytes))
		case rules.MaxPixels > 0 && pixels > rules.MaxPixels:
			return reject(i, "maxPixels", rules.MaxPixels, pixels, "pixels",
				fmt.Sprintf("it is %d × %d = %d pixels and %s takes at most %d pixels per image", item.Width, item.Height, pixels, name, rules.MaxPixels))
		}
		if l := rules.AltText; l.Max > 0 && l.Count != nil {
			if n := l.Count(r.AltText); n > l.Max {
				return reject(i, "altText", l.Max, n, l.Unit,
					fmt.Sprintf("its alt text is %d %s and %s takes at most %d %s", n, l.Unit, name, l.Max, l.Unit))
			}
		}
	}
	return nil
}
