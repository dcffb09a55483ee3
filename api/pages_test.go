package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postflow/postflow/providers/linkedin/linkedinfake"
)

// connectMember connects the fake's member into the caller's organization
// through the frontend's journey and returns the account's id.
func (ta *testAPI) connectMember(t *testing.T, auth http.Header) string {
	t.Helper()
	_, body, _ := ta.connectJSON(t, auth)
	if res := ta.browser.get(t, ta.authorize(t, body), nil); res.Header.Get("Location") != frontend+"/connections?connected=1" {
		t.Fatalf("connect landed on %q", res.Header.Get("Location"))
	}
	_, list := ta.do(t, "GET", "/connections", auth)
	var got struct {
		Connections []struct{ ID, PlatformUserID string }
	}
	if err := json.Unmarshal(list, &got); err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Connections {
		if c.PlatformUserID == "urn:li:person:"+ta.fake.Sub {
			return c.ID
		}
	}
	t.Fatalf("no member in %s", list)
	return ""
}

// send is ta.do with a JSON body.
func (ta *testAPI) send(t *testing.T, method, path, body string, auth http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range auth {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, out
}

func TestPagesRoutes(t *testing.T) {
	s := newSchemas(t)
	ta := newTestAPIPages(t, frontend, false, false, true)
	ta.fake.Configure(func(f *linkedinfake.Server) {
		f.ACLs = []linkedinfake.ACL{
			{Sub: f.Sub, OrganizationID: "1001", Role: "ADMINISTRATOR"},
			{Sub: f.Sub, OrganizationID: "1002", Role: "ANALYST"},
		}
		f.Organizations["1001"] = linkedinfake.Organization{LocalizedName: "Acme", VanityName: "acme"}
		f.Organizations["1002"] = linkedinfake.Organization{LocalizedName: "Acme Labs", VanityName: "acme-labs"}
	})
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	bob := bearer(token(t, "bob", []string{"org-b"}, ""))
	member := ta.connectMember(t, alice)
	pages := "/connections/" + member + "/pages"
	const tmpl = "/connections/{id}/pages"

	res, body := ta.do(t, "GET", "/providers", nil)
	if !strings.Contains(string(body), `"pages":true`) {
		t.Errorf("GET /providers does not say LinkedIn has pages: %s", body)
	}
	s.check("GET", "/providers", res.StatusCode, body)

	for _, tc := range []struct {
		name, method, path, body string
		auth                     http.Header
		status                   int
		code, contains           string
	}{
		{"lists the pages", "GET", pages, "", alice, 200, "", `"platformUserId":"urn:li:organization:1001","displayName":"Acme","handle":"acme","added":false`},
		{"another organization's connection", "GET", pages, "", bob, 404, "connection_not_found", ""},
		{"another organization adds", "POST", pages, `{"pages":["urn:li:organization:1001"]}`, bob, 404, "connection_not_found", ""},
		{"a page it does not administer", "POST", pages, `{"pages":["urn:li:organization:1001","urn:li:organization:1002"]}`, alice, 422, "page_not_administered", "urn:li:organization:1002"},
		{"no pages named", "POST", pages, `{"pages":[]}`, alice, 400, "invalid_pages", ""},
		{"an unknown field", "POST", pages, `{"page":["urn:li:organization:1001"]}`, alice, 400, "unknown_field", ""},
		{"not an id", "GET", "/connections/nope/pages", "", alice, 400, "invalid_id", ""},
		{"adds", "POST", pages, `{"pages":["urn:li:organization:1001"]}`, alice, 201, "", `"memberAccountId":"` + member + `"`},
		{"lists it as added", "GET", pages, "", alice, 200, "", `"added":true,"accountId":"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := ta.send(t, tc.method, tc.path, tc.body, tc.auth)
			if res.StatusCode != tc.status || errorCode(body) != tc.code || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d %q containing %q", tc.method, tc.path, res.StatusCode, body, tc.status, tc.code, tc.contains)
			}
			s.check(tc.method, tmpl, res.StatusCode, body)
			for _, secret := range []string{"accessToken", "refreshToken", "AQV", "AQW"} {
				if strings.Contains(string(body), secret) {
					t.Errorf("the answer shows %q", secret)
				}
			}
		})
	}

	// The page is an account of the organization, posting as the
	// organization with the member's tokens.
	_, body = ta.do(t, "GET", "/connections", alice)
	var list struct {
		Connections []struct {
			ID, PlatformUserID, Handle, DisplayName, MemberAccountID string
		}
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Connections) != 2 {
		t.Fatalf("connections: %s", body)
	}
	page := list.Connections[1]
	if page.PlatformUserID != "urn:li:organization:1001" || page.DisplayName != "Acme" || page.Handle != "acme" || page.MemberAccountID != member {
		t.Errorf("page connection = %+v", page)
	}
	s.check("GET", "/connections", 200, body)

	// A page has no pages of its own.
	res, body = ta.do(t, "GET", "/connections/"+page.ID+"/pages", alice)
	if res.StatusCode != 400 || errorCode(body) != "no_pages" {
		t.Errorf("pages of a page = %d %s", res.StatusCode, body)
	}
	s.check("GET", tmpl, res.StatusCode, body)

	// Disconnecting the member disconnects its page.
	if res, body := ta.do(t, "DELETE", "/connections/"+member, alice); res.StatusCode != 204 {
		t.Fatalf("disconnect = %d %s", res.StatusCode, body)
	}
	if _, body := ta.do(t, "GET", "/connections", alice); !strings.Contains(string(body), `"connections":[]`) {
		t.Errorf("after disconnecting the member: %s", body)
	}
}

func TestPagesNotEnabled(t *testing.T) {
	ta := newTestAPI(t, false)
	alice := bearer(token(t, "alice", []string{"org-a"}, ""))
	member := ta.connectMember(t, alice)
	for _, m := range []string{"GET", "POST"} {
		res, body := ta.send(t, m, "/connections/"+member+"/pages", `{"pages":["urn:li:organization:1001"]}`, alice)
		if res.StatusCode != 400 || errorCode(body) != "no_pages" || !strings.Contains(string(body), "not enabled") {
			t.Errorf("%s pages without LINKEDIN_PAGES_ENABLED = %d %s", m, res.StatusCode, body)
		}
	}
}
