package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // a network may answer a PNG
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/sandboxplatform"
)

// photo is a JPEG of w×h pixels that compresses as a photo does: a sky,
// hills with texture, a sun, and sensor noise (seeded, so every run makes
// the same bytes). 1800×1350 is about 1.1 MB, over Bluesky's 1,000,000
// bytes per image; 800×600 about 230 KB.
func photo(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	noise := func(v float64) uint8 { return uint8(max(0, min(255, v+rng.NormFloat64()*14))) }
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			var r, g, b float64
			hill := 0.6 + 0.08*math.Sin(fx*9) + 0.04*math.Sin(fx*23+1)
			switch {
			case math.Hypot(fx-0.75, fy-0.2) < 0.07:
				r, g, b = 250, 230, 150
			case fy < hill:
				r, g, b = 90+80*fy, 140+70*fy, 230-40*fy
			default:
				tex := 0.5 + 0.5*math.Sin(fx*140+fy*60)*math.Sin(fy*90)
				r, g, b = 50+40*tex, 110+60*tex, 40+20*tex
			}
			img.SetRGBA(x, y, color.RGBA{noise(r), noise(g), noise(b), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// libraryItem is a media library item as POST /media answers it.
type libraryItem struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// uploadMedia adds data to the organization's media library as a browser
// does: POST /media, multipart, one part named file.
func (d *devAPI) uploadMedia(name string, data []byte) libraryItem {
	d.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		d.t.Fatal(err)
	}
	_, _ = part.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", d.url+"/media", &body)
	req.Header.Set("X-User-Id", "dev-user")
	req.Header.Set("X-Organization-Id", "dev-org")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var it libraryItem
	if res.StatusCode != http.StatusCreated || json.Unmarshal(raw, &it) != nil || it.ID == "" {
		d.t.Fatalf("POST /media %s: %d %s", name, res.StatusCode, raw)
	}
	return it
}

// shownImage is an image as a network shows it with a post.
type shownImage struct {
	Alt   string
	Bytes []byte
	// Uploads is how many times the network got its bytes, where it says
	// (the LinkedIn double); -1 elsewhere.
	Uploads int
}

// images reads, from the network itself, the images of each post with
// text that the network holds for its account, one list a post.
func (n *networks) images(t *testing.T, network, text string) [][]shownImage {
	t.Helper()
	var out [][]shownImage
	switch network {
	case "sandbox":
		feed, err := sandboxplatform.ReadFeed(t.Context(), n.d.url+"/sandbox", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range feed {
			if p.Text != text {
				continue
			}
			var imgs []shownImage
			for _, m := range p.Media {
				imgs = append(imgs, shownImage{Alt: m.AltText, Bytes: getBytes(t, n.d.url+m.URL, ""), Uploads: -1})
			}
			out = append(out, imgs)
		}
	case "linkedin", "page":
		for _, p := range n.li.Posts() {
			if p.Rendered() != text {
				continue
			}
			var imgs []shownImage
			for _, pi := range p.Images {
				im, ok := n.li.Image(pi.URN)
				if !ok {
					t.Fatalf("the LinkedIn double's post %s refers to %s, which it does not hold", p.URN, pi.URN)
				}
				imgs = append(imgs, shownImage{Alt: pi.AltText, Bytes: im.Bytes, Uploads: im.Uploads})
			}
			out = append(out, imgs)
		}
	case "bluesky":
		var list struct {
			Records []struct {
				Value struct {
					Text  string
					Embed struct {
						Type   string `json:"$type"`
						Images []struct {
							Alt   string
							Image struct {
								Ref struct {
									Link string `json:"$link"`
								}
							}
						}
					}
				}
			}
		}
		getJSON(t, n.pds.URL+"/xrpc/com.atproto.repo.listRecords?collection=app.bsky.feed.post&limit=100&repo="+url.QueryEscape(n.bsky.DID), "", &list)
		for _, r := range list.Records {
			if r.Value.Text != text {
				continue
			}
			var imgs []shownImage
			for _, im := range r.Value.Embed.Images {
				blob := getBytes(t, n.pds.URL+"/xrpc/com.atproto.sync.getBlob?did="+url.QueryEscape(n.bsky.DID)+"&cid="+url.QueryEscape(im.Image.Ref.Link), "")
				imgs = append(imgs, shownImage{Alt: im.Alt, Bytes: blob, Uploads: -1})
			}
			out = append(out, imgs)
		}
	case "mastodon":
		var me struct{ ID string }
		getJSON(t, n.gts.URL+"/api/v1/accounts/verify_credentials", n.mastoT, &me)
		var statuses []struct {
			Content          string
			MediaAttachments []struct {
				URL         string
				Description string
			} `json:"media_attachments"`
		}
		getJSON(t, n.gts.URL+"/api/v1/accounts/"+me.ID+"/statuses?limit=40", n.mastoT, &statuses)
		for _, s := range statuses {
			if !strings.Contains(s.Content, text) {
				continue
			}
			var imgs []shownImage
			for _, m := range s.MediaAttachments {
				// GoToSocial names itself localhost:PORT (PublicURL); read it
				// where it listens.
				u := n.gts.URL + strings.TrimPrefix(m.URL, n.gts.PublicURL)
				imgs = append(imgs, shownImage{Alt: m.Description, Bytes: getBytes(t, u, n.mastoT), Uploads: -1})
			}
			out = append(out, imgs)
		}
	default:
		t.Fatalf("no network %s", network)
	}
	return out
}

// checkShownOnce: the network holds the post with text once, with exactly
// one image, whose alt text is alt and whose bytes decode as an image;
// when sha is not "" they are those bytes exactly (a network that keeps
// what it got). It returns the image's pixel size.
func (n *networks) checkShownOnce(t *testing.T, network, text, alt, sha string) (w, h int) {
	t.Helper()
	posts := n.images(t, network, text)
	if len(posts) != 1 || len(posts[0]) != 1 {
		t.Errorf("%s holds %d posts %q with images %v; want one with one image", network, len(posts), text, shape(posts))
		return 0, 0
	}
	im := posts[0][0]
	if im.Alt != alt {
		t.Errorf("%s: the image's alt text is %q, want %q", network, im.Alt, alt)
	}
	if im.Uploads != -1 && im.Uploads != 1 {
		t.Errorf("%s got the image's bytes %d times, want once", network, im.Uploads)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(im.Bytes))
	if err != nil {
		t.Errorf("%s: the image's %d bytes are no image: %v", network, len(im.Bytes), err)
		return 0, 0
	}
	if _, _, err := image.Decode(bytes.NewReader(im.Bytes)); err != nil {
		t.Errorf("%s: the %s image does not decode: %v", network, format, err)
	}
	if sum := sha256.Sum256(im.Bytes); sha != "" && hex.EncodeToString(sum[:]) != sha {
		t.Errorf("%s holds other bytes (%d, %s) than the library's", network, len(im.Bytes), format)
	}
	return cfg.Width, cfg.Height
}

func abs(v int) int { return max(v, -v) }

// shape is how many images each post holds, for messages.
func shape(posts [][]shownImage) []int {
	out := make([]int, len(posts))
	for i, p := range posts {
		out[i] = len(p)
	}
	return out
}

// sandboxUploads counts the images the sandbox holds for the dev account.
func (n *networks) sandboxUploads(t *testing.T) int {
	t.Helper()
	var out struct{ Media []json.RawMessage }
	getJSON(t, n.d.url+"/sandbox/users/"+n.sandboxUser+"/media", "", &out)
	return len(out.Media)
}

// getBytes GETs u (with a bearer token unless "") and returns its body.
func getBytes(t *testing.T, u, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
	}
	return body
}

// uploadRoutes are the calls that carry an image to each network through
// its proxy (contracts: LinkedIn's initializeUpload, whose PUT goes to the
// upload URL the double names, not through the proxy; Bluesky's
// uploadBlob; Mastodon's /api/v2/media).
var uploadRoutes = map[string][2]string{
	"linkedin": {"POST", "/rest/images"},
	"bluesky":  {"POST", "/xrpc/com.atproto.repo.uploadBlob"},
	"mastodon": {"POST", "/api/v2/media"},
}

// uploads counts the image uploads the network's proxy forwarded so far.
func (n *networks) uploads(network string) int {
	r := uploadRoutes[network]
	return n.proxy[network].Sent(r[0], r[1])
}

// resultMedia checks a result's uploads: one, of mediaID, with the
// network's id for it, adjusted (re-encoded to fit) or not as wantAdjusted.
func resultMedia(t *testing.T, network string, r map[string]any, mediaID string, wantAdjusted bool) {
	t.Helper()
	ms, _ := r["media"].([]any)
	if len(ms) != 1 {
		t.Errorf("%s: result media %v; want one upload", network, r["media"])
		return
	}
	m, _ := ms[0].(map[string]any)
	if m["mediaId"] != mediaID || fmt.Sprint(m["platformMediaId"]) == "" || m["uploadedAt"] == nil {
		t.Errorf("%s: result media %v; want the upload of %s with the network's id", network, m, mediaID)
	}
	if adjusted, _ := m["adjusted"].(string); (adjusted != "") != wantAdjusted {
		t.Errorf("%s: result media adjusted %q; want it said: %v", network, adjusted, wantAdjusted)
	}
}
