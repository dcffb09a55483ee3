package main

import "testing"

// The drill's counting of one account: posts a and b share a text (b
// repeats a), c has its own. The feed's posts belong to the pair whose
// Idempotency-Key made them, so a result holding another pair's post, or
// left open over a post the feed has, shows in its own column.
func TestCountAccount(t *testing.T) {
	texts := []string{"t1", "t1", "t2"}
	keys := []string{"ka", "kb", "kc"}
	pub := func(id string) drillPair { return drillPair{Status: "published", PlatformPostID: id} }
	dupFailed := drillPair{Status: "failed", ErrorCode: "DUPLICATE_CONTENT"}
	for _, tt := range []struct {
		name      string
		pairs     []drillPair
		closed    []bool
		feed      []feedPost
		detection bool
		want      drillResult
	}{
		{"the repeat refused as a duplicate", []drillPair{pub("x"), dupFailed, pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1}},
		{"the repeat published with the first's id", []drillPair{pub("x"), pub("x"), pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 3, missing: 1, publishedNotInFeed: 1, wrongID: 1}},
		{"the repeat made first, the first refused", []drillPair{dupFailed, pub("x"), pub("y")}, nil,
			[]feedPost{{"x", "t1", "kb"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1}},
		{"published with another text's post", []drillPair{pub("x"), dupFailed, pub("x")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1, wrongID: 1}},
		{"a text twice with detection on", []drillPair{pub("x"), pub("z"), pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"z", "t1", "kb"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 3, duplicates: 1}},
		{"a text twice with detection off: two pairs", []drillPair{pub("x"), pub("z"), pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"z", "t1", "kb"}, {"y", "t2", "kc"}}, false,
			drillResult{published: 3}},
		{"a pair twice with detection off", []drillPair{pub("x"), dupFailed, pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}, {"w", "t2", "kc"}}, false,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1, duplicates: 1}},
		{"no keys: a text goes to its first post", []drillPair{pub("x"), dupFailed, pub("y")}, nil,
			[]feedPost{{"x", "t1", ""}, {"y", "t2", ""}}, true,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1}},
		{"left open after the run closed, in the feed", []drillPair{pub("x"), dupFailed, {Status: "publishing"}}, []bool{true, true, true},
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 1, failed: 1, dupContent: 1, open: 1, missing: 1, openInFeed: 1}},
		{"open while the run is open", []drillPair{pub("x"), dupFailed, {Status: "pending"}}, []bool{true, true, false},
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{published: 1, failed: 1, dupContent: 1, open: 1, missing: 1}},
		{"failed and unknown while the feed has them", []drillPair{{Status: "failed", ErrorCode: "PLATFORM_ERROR"}, dupFailed, {Status: "unknown"}}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}}, true,
			drillResult{failed: 2, dupContent: 1, unknown: 1, missing: 1, failedInFeed: 1, unknownInFeed: 1}},
		{"another round's posts are not counted", []drillPair{pub("x"), dupFailed, pub("y")}, nil,
			[]feedPost{{"x", "t1", "ka"}, {"y", "t2", "kc"}, {"o", "old", "ko"}, {"o2", "old", "ko2"}}, true,
			drillResult{published: 2, failed: 1, dupContent: 1, missing: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			closed := tt.closed
			if closed == nil {
				closed = []bool{true, true, true}
			}
			var got drillResult
			got.countAccount(texts, keys, tt.pairs, closed, tt.feed, tt.detection)
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPostAgrees(t *testing.T) {
	accounts := []string{"a", "b"}
	for _, tt := range []struct {
		name    string
		status  string
		results map[string]drillPair
		want    bool
	}{
		{"all published, published", "published", map[string]drillPair{"a": {Status: "published"}, "b": {Status: "published"}}, true},
		{"one failed, failed", "failed", map[string]drillPair{"a": {Status: "published"}, "b": {Status: "failed"}}, true},
		{"one unknown, failed", "failed", map[string]drillPair{"a": {Status: "unknown"}, "b": {Status: "published"}}, true},
		{"one failed, published", "published", map[string]drillPair{"a": {Status: "published"}, "b": {Status: "failed"}}, false},
		{"a result missing, published", "published", map[string]drillPair{"a": {Status: "published"}}, false},
		{"all published, failed", "failed", map[string]drillPair{"a": {Status: "published"}, "b": {Status: "published"}}, false},
		{"all published, still publishing", "publishing", map[string]drillPair{"a": {Status: "published"}, "b": {Status: "published"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := postAgrees(tt.status, tt.results, accounts); got != tt.want {
				t.Errorf("postAgrees(%s, %v) = %v, want %v", tt.status, tt.results, got, tt.want)
			}
		})
	}
}

// A publication's key is its pair's, then "-" and a part of its own.
func TestPairOfKey(t *testing.T) {
	pair := idempotencyKey("6b0ca4cf169bd874ce728a47", "6b0ca4cf169bd874ce728a48")
	for _, tt := range []struct{ key, want string }{
		{pair + "-9f86d081884c7d65", pair},
		{pair, pair},
		{"other", "other"},
	} {
		if got := pairOfKey(tt.key); got != tt.want {
			t.Errorf("pairOfKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
