package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// mediaOptions shape the media round: posts with images to sandbox
// accounts, through the API, on a worker of its own.
type mediaOptions struct {
	posts, images, accounts, concurrency int
	// size is each image's size in bytes, roughly (noise, so it does not
	// compress).
	size int
}

// mediaResult is what the media round measured.
type mediaResult struct {
	opts    mediaOptions
	elapsed time.Duration
	// peaks are the worker's peak resident memory (VmHWM) after each
	// quarter of the posts were published: bounded by the images in
	// flight, they stay flat; growing with the batch, they climb.
	peaks []uint64
	// idle is the fresh worker's peak before the round.
	idle    uint64
	uploads int
	// imageBytes is the images' mean size, in bytes.
	imageBytes int
}

// noiseImage is a JPEG of about size bytes: noise does not compress, so
// quality 100 keeps it large. seed makes each image its own.
func noiseImage(size int, seed uint32) []byte {
	encode := func(side int) []byte {
		m := image.NewRGBA(image.Rect(0, 0, side, side))
		x := seed | 1
		for i := range m.Pix {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			m.Pix[i] = byte(x)
		}
		var buf bytes.Buffer
		_ = jpeg.Encode(&buf, m, &jpeg.Options{Quality: 100})
		return buf.Bytes()
	}
	// A first guess, then the side that the bytes a pixel it gave call
	// for: within a percent of size.
	side := int(math.Sqrt(float64(size) / 1.5))
	first := encode(side)
	return encode(int(float64(side) * math.Sqrt(float64(size)/float64(len(first)))))
}

// uploadMedia posts data to POST /media as a multipart upload.
func (a *apiClient) uploadMedia(name string, data []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		return "", err
	}
	if _, err := part.Write(data); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	req, err := http.NewRequest("POST", a.base+"/media", &body)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-User-Id", "bench")
	req.Header.Set("X-Organization-Id", "bench-org")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /media: %d %s", res.StatusCode, b)
	}
	var item struct{ ID string }
	if err := json.Unmarshal(b, &item); err != nil {
		return "", err
	}
	return item.ID, nil
}

// mediaRound uploads o.images images of o.size bytes to the library, then
// publishes o.posts posts, each with all of them (alt text included), to
// o.accounts sandbox accounts, o.concurrency at a time, and reads the
// worker's peak memory after each quarter.
func mediaRound(ctx context.Context, api *apiClient, worker *workerProcess, accounts []string, o mediaOptions) (mediaResult, error) {
	res := mediaResult{opts: o}
	var refs []string
	for i := range o.images {
		img := noiseImage(o.size, uint32(i+1)*2654435761)
		res.imageBytes += len(img) / o.images
		id, err := api.uploadMedia(fmt.Sprintf("bench-%d.jpg", i), img)
		if err != nil {
			return res, err
		}
		refs = append(refs, fmt.Sprintf(`{"id":%q,"altText":"bench image %d"}`, id, i+1))
	}
	ids, _ := json.Marshal(accounts)
	media := "[" + strings.Join(refs, ",") + "]"

	if idle, err := peakRSS(worker.cmd.Process.Pid); err == nil {
		res.idle = idle
	}
	start := time.Now()
	var (
		mu        sync.Mutex
		published int
		firstErr  error
		next      = o.posts / 4
	)
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	for i := range o.posts {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var p struct{ ID string }
			body := fmt.Sprintf(`{"content":"bench media post %d %d","socialAccountIds":%s,"media":%s}`, i, start.UnixNano(), ids, media)
			_, err := api.do("POST", "/posts", body, &p)
			if err == nil {
				_, err = api.publish(p.ID)
			}
			if err == nil {
				err = waitPublished(ctx, api, p.ID, 10*time.Minute)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			published++
			if published >= next && len(res.peaks) < 4 {
				if peak, err := peakRSS(worker.cmd.Process.Pid); err == nil {
					res.peaks = append(res.peaks, peak)
				}
				next += o.posts / 4
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.uploads = published * o.images * len(accounts)
	return res, firstErr
}

// waitPublished polls the post until it is published (an error if it
// ends otherwise or d passes).
func waitPublished(ctx context.Context, api *apiClient, postID string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var p struct{ Status string }
		if _, err := api.do("GET", "/posts/"+postID, "", &p); err != nil {
			return err
		}
		switch p.Status {
		case "published":
			return nil
		case "failed", "cancelled":
			var full json.RawMessage
			_, _ = api.do("GET", "/posts/"+postID, "", &full)
			return fmt.Errorf("post %s ended %s: %s", postID, p.Status, full)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("post %s not published within %s", postID, d)
}

// peakRSS is the process's peak resident memory in bytes (VmHWM).
func peakRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// table prints the round's figures.
func (r mediaResult) table() string {
	mb := func(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
	var peaks []string
	for _, p := range r.peaks {
		peaks = append(peaks, mb(p))
	}
	o := r.opts
	imageMB := float64(r.imageBytes) / 1e6
	return fmt.Sprintf("Media: %d posts x %d images of %.1f MB x %d sandbox accounts (%d uploads, %.1f GB streamed; the sandbox checks and hashes each, keeps no bytes), %d posts in flight\n"+
		"  %.2f posts/s, %.1f uploads/s, %.0f MB/s; worker peak RSS (VmHWM), MiB: %s before, %s after each quarter\n",
		o.posts, o.images, imageMB, o.accounts, r.uploads, float64(r.uploads)*imageMB/1000, o.concurrency,
		float64(o.posts)/r.elapsed.Seconds(), float64(r.uploads)/r.elapsed.Seconds(), float64(r.uploads)*imageMB/r.elapsed.Seconds(),
		mb(r.idle), strings.Join(peaks, " / "))
}

// runMedia connects the round's accounts and runs it on a fresh worker
// (*worker is replaced), so that its peak memory is the round's own.
func runMedia(ctx context.Context, api *apiClient, worker **workerProcess, env []string, logs io.Writer, o mediaOptions, emit func(string)) error {
	accounts := make([]string, o.accounts)
	for i := range accounts {
		var err error
		if accounts[i], err = api.connectSandbox(fmt.Sprintf("Bench Media Person %d", i)); err != nil {
			return err
		}
	}
	// The sandbox checks each upload's bytes and keeps their digest, not
	// the bytes: 1,200 images of 5 MB in the development database would
	// measure FerretDB's disk, not PostFlow.
	var list struct {
		Connections []struct{ ID, PlatformUserID string }
	}
	if _, err := api.do("GET", "/connections", "", &list); err != nil {
		return err
	}
	for _, c := range list.Connections {
		if slices.Contains(accounts, c.ID) {
			if _, err := api.do("PUT", "/sandbox/users/"+url.PathEscape(c.PlatformUserID)+"/behaviour", `{"discardImageBytes":true}`, nil); err != nil {
				return err
			}
		}
	}
	(*worker).stop()
	fresh, err := startWorker(env, logs)
	if err != nil {
		return err
	}
	*worker = fresh
	r, err := mediaRound(ctx, api, fresh, accounts, o)
	if err != nil {
		return err
	}
	emit("\n" + r.table())
	return nil
}
