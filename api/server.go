// Package api is PostFlow's HTTP surface, as fixed in the API spec: routes,
// the error shape, CORS for the frontend, and the probes. It depends on the
// domain's services; nothing in the domain depends on it.
package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/echo"
	"github.com/postflow/postflow/internal/idempotency"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/webhooks"
)

// Options is what the HTTP layer needs from the process that serves it.
type Options struct {
	Logger *slog.Logger
	// FrontendURL is the only origin allowed to call the API from a browser.
	FrontendURL string
	// MaxBodyBytes caps request bodies (413 beyond).
	MaxBodyBytes int64
	// Checks are the dependencies /readyz asks.
	Checks []Check
	// Worker, if its Ping is set, tells /readyz whether a worker polls.
	Worker WorkerCheck
	Auth   AuthOptions
	// Connections serves the OAuth and account routes.
	Connections *connections.Service
	// SecureCookies marks the cookie that binds a connection to its
	// browser Secure (and names it with the __Host- prefix): set it
	// whenever the API is served over HTTPS, that is outside development.
	SecureCookies bool
	// Sandbox, if not nil, is the sandbox platform, served under /sandbox.
	Sandbox http.Handler
	// Posts serves the post and publish routes.
	Posts *posts.Service
	// Webhooks, if not nil, serves the organizations' webhook endpoints
	// (/webhooks).
	Webhooks *webhooks.Service
	// Media serves the media library (/media) when its Library is set.
	Media MediaOptions
	// Idempotency keeps the Idempotency-Keys of the POSTs and PATCHes
	// that change connections, posts, media and webhooks (Redis), their
	// answers sealed and their fingerprints keyed (idempotency.New's
	// Sealer); without it a request carrying one is 503
	// idempotency_unavailable.
	Idempotency *idempotency.Store
	// Codec, if not nil, is served under /temporal-codec for the Temporal
	// Web UI to decode payloads (see codec.go).
	Codec CodecOptions
	// LoopbackHostsOnly answers only requests whose Host is a loopback
	// name or address (403 host_not_allowed otherwise): for an API that
	// listens on loopback alone (postflow dev), where trusted identity
	// headers and the sandbox answer without credentials, so a page whose
	// name an attacker points at 127.0.0.1 (DNS rebinding) must not be
	// answered as if it were the frontend.
	LoopbackHostsOnly bool
	// BlueskyClientMetadata, if not nil, is PostFlow's atproto OAuth client
	// metadata, served at BlueskyClientMetadataPath: with https, PostFlow's
	// client id is that URL, which Bluesky's authorization servers fetch.
	BlueskyClientMetadata map[string]any
	// Overdue serves the operator's list of overdue posts when its List
	// is set.
	Overdue OverdueOptions
	// Metrics, if not nil, is served at GET /metrics without credentials
	// (Prometheus's exposition format): for an API that answers loopback
	// alone; elsewhere metrics have a port of their own.
	Metrics http.Handler
	// BlueskyJWKS, if not nil, is the public key set of PostFlow as a
	// confidential atproto OAuth client, served at BlueskyJWKSPath (the
	// metadata's jwks_uri).
	BlueskyJWKS map[string]any
}

// Where BlueskyClientMetadata and BlueskyJWKS are served.
const (
	BlueskyClientMetadataPath = "/connections/bluesky/client-metadata.json"
	BlueskyJWKSPath           = "/connections/bluesky/jwks.json"
)

type server struct {
	logger        *slog.Logger
	checks        []Check
	worker        WorkerCheck
	auth          AuthOptions
	conns         *connections.Service
	posts         *posts.Service
	webhooks      *webhooks.Service
	media         *mediaServer // nil without a library
	idem          *idempotency.Store
	frontendURL   string
	secureCookies bool
	// frontendOrigin is FRONTEND_URL's origin (originOf), the only Origin
	// a connection's start is taken from; "" if it has none.
	frontendOrigin string
}

// sandboxMediaPath is the sandbox network's image upload, as mounted.
const sandboxMediaPath = "/sandbox/api/media"

// NewHandler returns the router with every route and middleware.
func NewHandler(opts Options) http.Handler {
	s := &server{logger: opts.Logger, checks: opts.Checks, worker: opts.Worker, auth: opts.Auth, conns: opts.Connections, posts: opts.Posts,
		webhooks: opts.Webhooks, frontendURL: opts.FrontendURL, secureCookies: opts.SecureCookies, frontendOrigin: originOf(opts.FrontendURL),
		idem: opts.Idempotency}
	if opts.Media.Library != nil {
		s.media = newMediaServer(opts.Media)
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	if opts.LoopbackHostsOnly {
		r.Use(s.loopbackOnly("This development server answers only requests to a loopback host (localhost, 127.0.0.1, [::1])."))
	}
	r.Use(s.recoverer)
	r.Use(s.logRequests)
	r.Use(cors(opts.FrontendURL))
	// An upload has its own, larger cap (MEDIA_MAX_BYTES), which its
	// handler sets; so has the sandbox's image upload, which the sandbox
	// caps itself (a network's own limit, as a real one has).
	r.Use(limitBody(opts.MaxBodyBytes, func(r *http.Request) bool {
		return r.Method == http.MethodPost && ((s.media != nil && r.URL.Path == "/media") ||
			(opts.Sandbox != nil && r.URL.Path == sandboxMediaPath))
	}))

	// HEAD is answered wherever GET is (RFC 9110 §9.3.2), by the GET
	// route; net/http sends its headers without the body.
	r.Use(middleware.GetHead)

	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, s.logger, NotFound("not_found", "No route "+echo.Quote(req.Method)+" "+echo.Quote(req.URL.Path)+"."))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		methodNotAllowed(w, req, s.logger, allowed(r, req.URL.Path))
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", serveOpenAPI)
	if opts.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", opts.Metrics)
	}

	if opts.Sandbox != nil {
		r.Mount("/sandbox", http.StripPrefix("/sandbox", opts.Sandbox))
	}
	if opts.Codec.Codec != nil {
		r.Mount(codecPath, s.codecHandler(opts.Codec))
	}
	if opts.Overdue.List != nil {
		r.Group(func(r chi.Router) {
			if opts.Overdue.Anonymous {
				r.Use(s.loopbackOnly("Without credentials, operator routes answer only requests to a loopback host (localhost, 127.0.0.1, [::1])."))
			}
			r.Use(s.operatorOnly(opts.Overdue.Anonymous, "Listing every organization's overdue posts"))
			r.Get("/operator/overdue-posts", s.overduePosts(opts.Overdue))
		})
	}
	// Public and the same for every caller: authorization servers fetch
	// them without credentials and may cache them.
	for path, doc := range map[string]map[string]any{BlueskyClientMetadataPath: opts.BlueskyClientMetadata, BlueskyJWKSPath: opts.BlueskyJWKS} {
		if doc != nil {
			r.Get(path, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=300")
				writeJSON(w, http.StatusOK, doc)
			})
		}
	}
	if s.conns != nil {
		r.Get("/providers", s.listProviders)
		r.Get("/connections/callback/{providerId}", s.callback)
		// No Idempotency-Key: a browser's form POST cannot send one, no
		// organization is known to keep it under, its single-use ticket
		// makes a repeat do nothing again already, and its answer's
		// cookie (the browser's key) is one no replay may carry.
		r.Post("/connections/connect/{providerId}/start", s.start)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			// A retried login must not log in twice (a second session,
			// and the app password sent again); retried pages must not
			// be written twice. The login's body holds the app
			// password: the store keeps only a keyed digest of it.
			idem := s.idempotent(idemRoute{maxBody: opts.MaxBodyBytes})
			r.Get("/connections/connect/{providerId}", s.connect)
			r.Get("/connections", s.listConnections)
			r.With(idem).Post("/connections/{id}", s.login)
			r.Delete("/connections/{id}", s.disconnect)
			r.Get("/connections/{id}/pages", s.listPages)
			r.With(idem).Post("/connections/{id}/pages", s.addPages)
		})
	}
	if s.posts != nil {
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			// A client may retry these after a timeout without doing
			// them twice (idempotency.go).
			idem := s.idempotent(idemRoute{maxBody: opts.MaxBodyBytes})
			r.With(idem).Post("/posts", s.createPost)
			r.Get("/posts", s.listPosts)
			r.Get("/posts/{id}", s.getPost)
			r.With(idem).Patch("/posts/{id}", s.updatePost)
			r.Delete("/posts/{id}", s.deletePost)
			r.With(idem).Post("/publish/{postId}", s.publish)
			r.With(idem).Post("/posts/{id}/retry", s.accountsAction(s.posts.Retry))
			r.With(idem).Post("/posts/{id}/unpublish", s.accountsAction(s.posts.Unpublish))
		})
	}
	if s.webhooks != nil {
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			// A retry after a timeout must not make a second endpoint
			// or rotate twice (which would end the first secret at once).
			idem := s.idempotent(idemRoute{maxBody: opts.MaxBodyBytes})
			r.With(idem).Post("/webhooks", s.createWebhook)
			r.Get("/webhooks", s.listWebhooks)
			r.Get("/webhooks/{id}", s.getWebhook)
			r.With(idem).Patch("/webhooks/{id}", s.updateWebhook)
			r.Delete("/webhooks/{id}", s.deleteWebhook)
			r.With(idem).Post("/webhooks/{id}/rotate-secret", s.rotateWebhookSecret)
			r.Get("/webhooks/{id}/deliveries", s.listDeliveries)
			r.With(idem).Post("/webhooks/{id}/deliveries/{deliveryId}/redeliver", s.redeliver)
		})
	}
	if s.media != nil {
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.With(s.idempotent(idemRoute{maxBody: s.media.lib.Limits().MaxBytes + multipartOverhead, readTime: uploadReadTime})).
				Post("/media", s.uploadOrImport)
			r.Get("/media", s.listMedia)
			r.Get("/media/{id}", s.getMedia)
			r.Get("/media/{id}/content", s.mediaContent)
			r.Delete("/media/{id}", s.deleteMedia)
		})
		if s.media.links != nil {
			// No credentials: networks fetch it; the link's signature is
			// the right, and the query (the signature) is never logged.
			r.Get("/media/{id}/public", s.publicMedia)
		}
	}
	return r
}

// probedMethods are the methods a 405's Allow may list.
var probedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods routes answers on path, for a 405's Allow:
// chi knows them but hands a custom 405 handler none, so they are asked
// of the router again. HEAD goes with GET (middleware.GetHead).
func allowed(routes chi.Routes, path string) []string {
	var out []string
	for _, m := range probedMethods {
		if routes.Match(chi.NewRouteContext(), m, path) ||
			(m == http.MethodHead && routes.Match(chi.NewRouteContext(), http.MethodGet, path)) {
			out = append(out, m)
		}
	}
	return out
}

// methodNotAllowed is every 405 of the API: with Allow listing the
// methods the target takes (RFC 9110 §15.5.6).
func methodNotAllowed(w http.ResponseWriter, r *http.Request, logger *slog.Logger, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, r, logger, &Error{http.StatusMethodNotAllowed, "method_not_allowed",
		"Method " + echo.Quote(r.Method) + " is not allowed on " + echo.Quote(r.URL.Path) + "; it takes " + strings.Join(allow, ", ") + "."})
}

// recoverer turns a panic into a 500 of the spec's shape and a log line,
// keeping the process up.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, r, s.logger, &Error{http.StatusInternalServerError, "internal", "Something went wrong on our side; it has been logged."})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one line per request. It logs the path, never the
// query: OAuth callbacks carry codes and states there.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		s.logger.Log(r.Context(), level, "http request",
			"method", r.Method, "path", r.URL.Path, "status", ww.Status(),
			"bytes", ww.BytesWritten(), "duration_ms", time.Since(start).Milliseconds(),
			"request_id", middleware.GetReqID(r.Context()))
	})
}

// cors answers preflights for the frontend's origin only; any other origin
// gets no CORS headers and the browser blocks it.
func cors(frontendURL string) func(http.Handler) http.Handler {
	return corsFor(frontendURL, "GET, POST, PATCH, DELETE, OPTIONS", "Authorization, Content-Type, "+IdempotencyKeyHeader,
		ReplayedHeader+", Retry-After")
}

// originOf returns the origin of an absolute URL as a browser writes it
// in an Origin header (RFC 6454 serialization): scheme and host in lower
// case, and no port when it is the scheme's default (443 for https, 80 for
// http), so that FRONTEND_URL=https://app.example.com:443 matches the
// https://app.example.com browsers send. "" when raw has no scheme or host.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// requestOrigin returns a request's Origin header in originOf's form, or
// "" when it is absent, "null", or more than an origin (a path, a query,
// credentials), which no browser sends.
func requestOrigin(r *http.Request) string {
	raw := r.Header.Get("Origin")
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	return originOf(raw)
}

// corsFor allows one origin (the origin of originURL) the methods and
// headers given, and lets its scripts read the answer headers expose
// names (beside the CORS-safelisted ones; "" for none).
func corsFor(originURL, methods, headers, expose string) func(http.Handler) http.Handler {
	origin := originOf(originURL)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := requestOrigin(r)
			if got == "" || origin == "" || got != origin {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", methods)
				h.Set("Access-Control-Allow-Headers", headers)
				h.Set("Access-Control-Max-Age", strconv.Itoa(600))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if expose != "" {
				h.Set("Access-Control-Expose-Headers", expose)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// limitBody caps the body, except for the requests except names (which
// cap their own); decoders see an *http.MaxBytesError past it, which the
// JSON reader turns into 413.
func limitBody(n int64, except func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n > 0 && r.Body != nil && !except(r) {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}
