// Package workflows holds PostFlow's Temporal workflows: pure orchestration
// that reads like the design document. Nothing here does I/O; activities do.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that PostFlow's workflows keep current, so that an
// operator can filter runs in the Temporal Web UI ("all failed posts of this
// organization"). Their values are ids and states, never user content:
// search attributes are stored unencrypted.
var (
	OrganizationIDAttr = temporal.NewSearchAttributeKeyKeyword("PostflowOrganizationId")
	PostIDAttr         = temporal.NewSearchAttributeKeyKeyword("PostflowPostId")
	PlatformAttr       = temporal.NewSearchAttributeKeyKeywordList("PostflowPlatform")
	StatusAttr         = temporal.NewSearchAttributeKeyKeyword("PostflowStatus")
)

// SearchAttributes lists the custom search attributes the namespace needs,
// with their types, for the dev stack and the worker to register.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKey{OrganizationIDAttr, PostIDAttr, PlatformAttr, StatusAttr} {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}
