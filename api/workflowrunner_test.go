package api_test

// The API over a world whose runs are real PublishPost workflows (in the
// SDK's test environment) with the real activities and the sandbox.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/internal/testworld"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks/webhookstest"
	"github.com/postflow/postflow/workflows"
)

// workflowRunner runs each trigger's PublishPost to its end, in the SDK's
// test environment (timers and retry backoffs skip time), with the real
// activities over the world: a request answers once its run is over.
type workflowRunner struct {
	acts *activities.Activities
	mu   sync.Mutex
	runs int
	// unpublishing holds the posts whose unpublish run a test pretends
	// has not ended.
	unpublishing map[string]bool
}

// newRunEnv is a test environment for a run of the real activities: they
// do FerretDB and HTTP I/O, which a loaded machine can stall past the
// SDK's 3 s wall-clock idle timeout.
func newRunEnv() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	return env
}

func (r *workflowRunner) Start(_ context.Context, p *posts.Post) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	env := newRunEnv()
	env.RegisterWorkflow(workflows.PublishPost)
	r.acts.Register(env)
	env.ExecuteWorkflow(workflows.PublishPost, workflows.PublishPostInput{PostID: p.ID})
	if err := env.GetWorkflowError(); err != nil {
		return "", err
	}
	r.runs++
	return fmt.Sprintf("run-%d", r.runs), nil
}

// StartUnpublish runs UnpublishPost to its end likewise.
func (r *workflowRunner) StartUnpublish(_ context.Context, p *posts.Post, accountIDs []string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	env := newRunEnv()
	env.RegisterWorkflow(workflows.UnpublishPost)
	r.acts.Register(env)
	env.ExecuteWorkflow(workflows.UnpublishPost, workflows.UnpublishPostInput{PostID: p.ID, AccountIDs: accountIDs})
	if err := env.GetWorkflowError(); err != nil {
		return "", err
	}
	r.runs++
	return fmt.Sprintf("run-%d", r.runs), nil
}

func (r *workflowRunner) Unpublishing(_ context.Context, postID string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unpublishing[postID], nil
}

func (r *workflowRunner) Cancel(context.Context, string) error     { return nil }
func (r *workflowRunner) Reschedule(context.Context, string) error { return nil }

// runWorld is the API over a world with the sandbox network and three
// sandbox accounts of org-a, whose runs are real workflows.
type runWorld struct {
	tw      *testworld.World
	srv     *httptest.Server
	schemas *schemas
	a, b, c *connections.Account
	// events are the webhook events the runs emitted.
	events *webhookstest.Recorder
	runner *workflowRunner
}

func newRunWorld(t *testing.T) *runWorld {
	t.Helper()
	tw := testworld.New(t, testworld.Options{Sandbox: true})
	w := &runWorld{tw: tw, schemas: newSchemas(t)}
	w.events = &webhookstest.Recorder{}
	acts := tw.Activities()
	acts.Events = w.events
	runner := &workflowRunner{acts: acts, unpublishing: map[string]bool{}}
	w.runner = runner
	svc := tw.PostsService(runner).WithUnpublisher(runner)
	w.srv = httptest.NewServer(api.NewHandler(api.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FrontendURL: frontend, MaxBodyBytes: 64 << 10,
		Auth: api.AuthOptions{JWTSecret: []byte(jwtSecret)}, Posts: svc,
	}))
	t.Cleanup(w.srv.Close)
	w.a, w.b, w.c = tw.MustConnectSandbox(t, "org-a", "alice", "Ada"), tw.MustConnectSandbox(t, "org-a", "alice", "Bea"),
		tw.MustConnectSandbox(t, "org-a", "alice", "Cy")
	return w
}

// ids finds the ids in a path, for its template in the OpenAPI document.
var ids = regexp.MustCompile(`/(posts|publish)/[0-9a-fA-F]{24}`)

// call does method path with body as alice of org-a, checks the answer
// against the OpenAPI document and decodes it.
func (w *runWorld) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", []string{"org-a"}, ""))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, raw := send(t, req)
	template := ids.ReplaceAllStringFunc(strings.SplitN(path, "?", 2)[0], func(m string) string {
		if strings.HasPrefix(m, "/posts/") {
			return "/posts/{id}"
		}
		return "/publish/{postId}"
	})
	w.schemas.check(method, template, res.StatusCode, raw)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// behave sets what the sandbox answers account's next calls.
func (w *runWorld) behave(t *testing.T, account *connections.Account, behaviour string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, w.tw.Sandbox.URL+"/sandbox/users/"+account.PlatformUserID+"/behaviour", strings.NewReader(behaviour))
	res, _ := send(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("behaviour %s: %d", behaviour, res.StatusCode)
	}
}

// holds counts account's posts with text on the sandbox.
func (w *runWorld) holds(t *testing.T, account *connections.Account, text string) int {
	t.Helper()
	n, err := sandboxplatform.CountInFeed(context.Background(), w.tw.Sandbox.URL+"/sandbox", account.PlatformUserID, text)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// results reads GET /posts/{id}: the post's status and its results by
// account id.
func (w *runWorld) results(t *testing.T, id string) (string, map[string]map[string]any) {
	t.Helper()
	status, out := w.call(t, "GET", "/posts/"+id, "")
	if status != 200 {
		t.Fatalf("GET /posts/%s: %d %v", id, status, out)
	}
	byAccount := map[string]map[string]any{}
	list, _ := out["results"].([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		byAccount[m["socialAccountId"].(string)] = m
	}
	s, _ := out["status"].(string)
	return s, byAccount
}
