package linkedin

import (
	"context"

	"github.com/postflow/postflow/providers"
)

// MediaLimits: this provider attaches no images yet.
func (p *Provider) MediaLimits(context.Context, providers.Account) (providers.MediaRules, error) {
	return p.Rules().Media, nil
}

// Upload: this provider attaches no images yet (Rules().Media.MaxImages 0).
func (p *Provider) Upload(context.Context, providers.Account, providers.Image) (*providers.Upload, error) {
	return nil, providers.ErrNoMedia
}

// Reusable: nothing is ever uploaded, so nothing is reusable.
func (p *Provider) Reusable(context.Context, providers.Account, providers.Upload) (bool, error) {
	return false, nil
}
