package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// apiClient calls PostFlow's HTTP API as the dev frontend would, with the
// trusted identity headers of `postflow dev`.
type apiClient struct{ base string }

var httpClient = &http.Client{
	Timeout:       time.Minute,
	Transport:     &http.Transport{MaxIdleConnsPerHost: 256},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (a *apiClient) do(method, path, body string, out any) (*http.Response, error) {
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-User-Id", "bench")
	req.Header.Set("X-Organization-Id", "bench-org")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		return res, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return res, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res, nil
}

// connectSandbox connects a sandbox account through the browser flow and
// returns its id. Like a browser, it keeps the cookie the connect sets:
// the callback completes only with it.
func (a *apiClient) connectSandbox(name string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	browser := &http.Client{Timeout: httpClient.Timeout, Transport: httpClient.Transport, CheckRedirect: httpClient.CheckRedirect, Jar: jar}
	req, err := http.NewRequest("GET", a.base+"/connections/connect/sandbox", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-User-Id", "bench")
	req.Header.Set("X-Organization-Id", "bench-org")
	res, err := browser.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return "", fmt.Errorf("GET /connections/connect/sandbox: %d", res.StatusCode)
	}
	authorize, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	form := authorize.Query()
	form.Set("name", name)
	form.Set("action", "allow")
	res, err = browser.PostForm(a.base+"/sandbox/authorize", form)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	res, err = browser.Get(res.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if !strings.Contains(res.Header.Get("Location"), "connected=1") {
		return "", fmt.Errorf("connect %s landed on %s", name, res.Header.Get("Location"))
	}
	var list struct {
		Connections []struct{ ID, DisplayName string }
	}
	if _, err := a.do("GET", "/connections", "", &list); err != nil {
		return "", err
	}
	for _, c := range list.Connections {
		if c.DisplayName == name {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("account %s not listed", name)
}

func (a *apiClient) createPost(text string, accounts []string) (string, error) {
	return a.createScheduled(text, accounts, time.Time{})
}

// createScheduled creates a post for at (zero: none).
func (a *apiClient) createScheduled(text string, accounts []string, at time.Time) (string, error) {
	ids, _ := json.Marshal(accounts)
	extra := ""
	if !at.IsZero() {
		extra = fmt.Sprintf(`,"scheduledAt":%q`, at.UTC().Format(time.RFC3339Nano))
	}
	var p struct{ ID string }
	_, err := a.do("POST", "/posts", fmt.Sprintf(`{"content":%q,"socialAccountIds":%s%s}`, text, ids, extra), &p)
	return p.ID, err
}

// publishedAt is when the post's (first) result was published.
func (a *apiClient) publishedAt(postID string) (time.Time, error) {
	var p struct {
		Status  string
		Results []struct{ PublishedAt time.Time }
	}
	if _, err := a.do("GET", "/posts/"+postID, "", &p); err != nil {
		return time.Time{}, err
	}
	if p.Status != "published" || len(p.Results) == 0 {
		return time.Time{}, fmt.Errorf("post %s is %s", postID, p.Status)
	}
	return p.Results[0].PublishedAt, nil
}

func (a *apiClient) publish(postID string) (string, error) {
	var run struct{ WorkflowID string }
	_, err := a.do("POST", "/publish/"+postID, "", &run)
	return run.WorkflowID, err
}
