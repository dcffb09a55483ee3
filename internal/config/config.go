// Package config reads PostFlow's settings from the environment, validates
// them, and reports every problem, one line each, naming the variable.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Role says which process reads the configuration; each needs a different
// set of variables (the worker never serves HTTP, the API never publishes).
type Role string

const (
	RoleAPI    Role = "api"
	RoleWorker Role = "worker"
	RoleDev    Role = "dev"
)

// Environment names as in the API spec: NODE_ENV is kept from the original
// design and read as the environment name.
const (
	EnvProduction  = "production"
	EnvDevelopment = "development"
)

// Config is every setting PostFlow reads. Secrets are tagged json:"-" so a
// Config can never be marshalled into a log line or an API answer whole.
type Config struct {
	Environment string `env:"NODE_ENV" envDefault:"development"`
	LogLevel    string `env:"LOG_LEVEL" envDefault:"info"`
	Port        int    `env:"PORT" envDefault:"8080"`
	FrontendURL string `env:"FRONTEND_URL"`

	MongoURI string `env:"MONGODB_URI" json:"-"`
	RedisURL string `env:"REDIS_URL" json:"-"`

	// TokenEncryptionKey is the raw text of the variable; Key() decodes it.
	TokenEncryptionKey string `env:"TOKEN_ENCRYPTION_KEY" json:"-"`
	// TokenEncryptionPreviousKeys are retired keys, comma-separated: tokens
	// they sealed still open, and are re-sealed with the current key.
	TokenEncryptionPreviousKeys []string `env:"TOKEN_ENCRYPTION_PREVIOUS_KEYS" json:"-"`
	JWTSecret                   string   `env:"JWT_SECRET" json:"-"`
	AuthTrustHeaders            bool     `env:"AUTH_TRUST_HEADERS" envDefault:"false"`

	Temporal Temporal

	LinkedIn LinkedIn

	Mastodon Mastodon
	Bluesky  Bluesky

	// SandboxEnabled serves the sandbox platform under /sandbox and
	// registers its provider: on in dev, off in production unless asked for.
	SandboxEnabled bool `env:"SANDBOX_ENABLED" envDefault:"false"`
	// SandboxURL is where the worker and the API reach the sandbox platform;
	// empty means this API on 127.0.0.1:PORT.
	SandboxURL string `env:"SANDBOX_URL"`

	// AllowLocalServers lets users name servers (a Mastodon instance, a
	// Bluesky PDS) on loopback and private addresses, over plain http:
	// on in dev, whose test servers run on 127.0.0.1; refused in
	// production, where it would let users reach PostFlow's own network.
	AllowLocalServers bool `env:"ALLOW_LOCAL_SERVERS" envDefault:"false"`

	// RateLimitHorizon bounds how long one account of a post waits on 429s
	// before its publish fails.
	RateLimitHorizon time.Duration `env:"RATE_LIMIT_HORIZON" envDefault:"48h"`

	// ReadyzRequireWorker makes GET /readyz answer 503 when no worker
	// polls the publish task queue: for a single-host stack, where the API
	// and its worker live and die together. Off by default: an API scaled
	// apart from its workers must stay in its load balancer while they are
	// down (GET /readyz?scope=publishing tells monitors either way).
	ReadyzRequireWorker bool `env:"READYZ_REQUIRE_WORKER" envDefault:"false"`

	// MetricsAddr is where the process serves Prometheus metrics at
	// /metrics (host:port, such as :9090), apart from the API's port:
	// an internal port, unauthenticated. Empty: not served.
	MetricsAddr string `env:"METRICS_ADDR"`

	// OverdueAfter is how long past its time (scheduledAt, or its trigger)
	// a post may go without a final state before it counts as overdue.
	OverdueAfter time.Duration `env:"OVERDUE_AFTER" envDefault:"10m"`

	// ShutdownTimeout bounds how long in-flight HTTP requests and activities
	// get to finish after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// MaxBodyBytes caps request bodies (413 beyond).
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	// AccountExpiringDays is how many days before a token nothing can
	// refresh ends (a LinkedIn member's lives 60 days) the worker
	// announces account.expiring; 0: never.
	AccountExpiringDays int `env:"ACCOUNT_EXPIRING_DAYS" envDefault:"7"`

	// WebhookRetention is how long webhook events and delivery attempts
	// are kept (webhooks.Pruner, and a TTL index on MongoDB): from
	// MinWebhookRetention to MaxWebhookRetention. 30 days by default.
	WebhookRetention time.Duration `env:"WEBHOOK_RETENTION" envDefault:"720h"`

	// MediaMaxBytes caps an image uploaded or imported into the media
	// library, in bytes (413 beyond); MAX_BODY_BYTES does not apply to
	// POST /media.
	MediaMaxBytes int64 `env:"MEDIA_MAX_BYTES" envDefault:"20971520"`
	// MediaMaxPixels caps an image's width*height, checked on its header
	// before it is decoded (the decompression-bomb guard; 422 beyond).
	// Decoding takes 1 to 8 bytes a pixel at peak (media.Limits).
	MediaMaxPixels int64 `env:"MEDIA_MAX_PIXELS" envDefault:"50000000"`
	// MediaDecodeMemory bounds, in bytes, the memory a process's image
	// decodes (uploads, imports, re-encodings for Bluesky) hold at once
	// (media.Budget): others wait, and an image needing more than all of
	// it is refused (422 too_many_pixels). 512 MiB by default.
	MediaDecodeMemory int64 `env:"MEDIA_DECODE_MEMORY" envDefault:"536870912"`
	// MediaImportTimeout bounds fetching an image by URL (POST /media
	// {"url"}), whole.
	MediaImportTimeout time.Duration `env:"MEDIA_IMPORT_TIMEOUT" envDefault:"20s"`
	// MediaURLSecret signs the public media links (media/publicurl), at
	// least 32 bytes: required by the API outside dev, which generates one.
	MediaURLSecret string `env:"MEDIA_URL_SECRET" json:"-"`
	// PublicBaseURL is where the API is reachable from the Internet, for
	// links networks fetch (public media links); dev fills it with its
	// own address.
	PublicBaseURL string `env:"PUBLIC_BASE_URL"`

	// MediaStore is where media bytes are kept: "gridfs" (the default: the
	// MongoDB database PostFlow already uses) or "s3" (a bucket, see S3).
	MediaStore string `env:"MEDIA_STORE" envDefault:"gridfs"`
	S3         S3
}

// Bounds of WEBHOOK_RETENTION. The least is webhooks.MinRetention (kept
// equal by a test; config imports no domain package): longer than the
// ~27-hour delivery schedule, so that no event goes while its delivery
// can still run. The most keeps expireAfterSeconds far within MongoDB's
// 32-bit range.
const (
	MinWebhookRetention = 48 * time.Hour
	MaxWebhookRetention = 10 * 365 * 24 * time.Hour
)

// Media stores.
const (
	MediaStoreGridFS = "gridfs"
	MediaStoreS3     = "s3"
)

// S3 is the bucket of MEDIA_STORE=s3, on AWS or any S3-compatible server
// (MinIO, versitygw, Ceph, ...). See media/s3.
type S3 struct {
	// Endpoint is the S3 API's base URL; empty for AWS (from the region).
	Endpoint string `env:"S3_ENDPOINT"`
	// Region signs requests; empty means us-east-1.
	Region          string `env:"S3_REGION"`
	Bucket          string `env:"S3_BUCKET"`
	AccessKeyID     string `env:"S3_ACCESS_KEY_ID"`
	SecretAccessKey string `env:"S3_SECRET_ACCESS_KEY" json:"-"`
	// ForcePathStyle addresses endpoint/bucket/key (MinIO, versitygw)
	// rather than bucket.endpoint/key.
	ForcePathStyle bool `env:"S3_FORCE_PATH_STYLE" envDefault:"false"`
	// Prefix is the folder PostFlow's objects go in ("postflow/").
	Prefix string `env:"S3_PREFIX"`
}

// Temporal says where the Temporal cluster is and how to reach it. TLS and
// an API key are optional; both are what Temporal Cloud asks for.
type Temporal struct {
	Address       string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	Namespace     string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	TaskQueue     string `env:"TEMPORAL_TASK_QUEUE" envDefault:"postflow-publish"`
	APIKey        string `env:"TEMPORAL_API_KEY" json:"-"`
	TLS           bool   `env:"TEMPORAL_TLS" envDefault:"false"`
	TLSCertFile   string `env:"TEMPORAL_TLS_CERT_FILE"`
	TLSKeyFile    string `env:"TEMPORAL_TLS_KEY_FILE"`
	TLSCAFile     string `env:"TEMPORAL_TLS_CA_FILE"`
	TLSServerName string `env:"TEMPORAL_TLS_SERVER_NAME"`
	// PayloadKey seals what PostFlow stores in Temporal (payloadcodec);
	// PayloadPreviousKeys are retired keys that still open old payloads.
	PayloadKey          string   `env:"TEMPORAL_PAYLOAD_KEY" json:"-"`
	PayloadPreviousKeys []string `env:"TEMPORAL_PAYLOAD_PREVIOUS_KEYS" json:"-"`
	// UIOrigin is the Temporal Web UI's origin (scheme://host:port), which
	// may call the codec endpoint from the browser (CORS).
	UIOrigin string `env:"TEMPORAL_UI_ORIGIN"`
	// CodecAnonymous lets the codec endpoint answer without credentials:
	// for postflow dev, whose API only listens on 127.0.0.1. Refused with
	// NODE_ENV=production.
	CodecAnonymous bool `env:"TEMPORAL_CODEC_ANONYMOUS" envDefault:"false"`
}

// LinkedIn holds the app credentials and the endpoints, which tests point at
// a server that speaks LinkedIn's contract.
type LinkedIn struct {
	ClientID     string `env:"LINKEDIN_CLIENT_ID"`
	ClientSecret string `env:"LINKEDIN_CLIENT_SECRET" json:"-"`
	RedirectURI  string `env:"LINKEDIN_REDIRECT_URI"`
	AuthURL      string `env:"LINKEDIN_AUTH_URL" envDefault:"https://www.linkedin.com/oauth/v2/authorization"`
	TokenURL     string `env:"LINKEDIN_TOKEN_URL" envDefault:"https://www.linkedin.com/oauth/v2/accessToken"`
	APIURL       string `env:"LINKEDIN_API_URL" envDefault:"https://api.linkedin.com"`
	// APIVersion is the LinkedIn-Version header (YYYYMM). LinkedIn retires
	// each version about a year after its release.
	APIVersion string `env:"LINKEDIN_API_VERSION" envDefault:"202610"`
	// PagesEnabled: LinkedIn approved the app for the organization scopes
	// (Community Management API), so members are asked for them and may
	// add the company pages they administer as accounts.
	PagesEnabled bool `env:"LINKEDIN_PAGES_ENABLED" envDefault:"false"`
}

// Mastodon configures the Mastodon provider. There is nothing to register
// in advance: PostFlow registers itself on each instance a user connects
// (POST /api/v1/apps) with these values.
type Mastodon struct {
	// Enabled is MASTODON_ENABLED; unset, Mastodon is on when RedirectURI
	// is set (see MastodonEnabled).
	Enabled *bool `env:"MASTODON_ENABLED"`
	// RedirectURI is PostFlow's callback, registered with every instance:
	// https://<api>/connections/callback/mastodon.
	RedirectURI string `env:"MASTODON_REDIRECT_URI"`
	// ClientName and Website are what users see on an instance's
	// authorize page.
	ClientName string `env:"MASTODON_CLIENT_NAME" envDefault:"PostFlow"`
	Website    string `env:"MASTODON_WEBSITE"`
}

// MastodonEnabled reports whether the Mastodon provider is registered:
// MASTODON_ENABLED when set, else whether MASTODON_REDIRECT_URI is.
func (c *Config) MastodonEnabled() bool {
	if c.Mastodon.Enabled != nil {
		return *c.Mastodon.Enabled
	}
	return c.Mastodon.RedirectURI != ""
}

// Bluesky needs no app registration: accounts connect with app passwords,
// or with BLUESKY_CONNECT=oauth through atproto OAuth, where PostFlow's
// client id is the client metadata it serves itself. The URLs are
// Bluesky's shared services, which tests and self-hosted networks point
// elsewhere.
type Bluesky struct {
	Enabled bool `env:"BLUESKY_ENABLED" envDefault:"true"`
	// Connect is how accounts connect: "app-password" (the default: it
	// needs nothing served and works with any PDS) or "oauth" (atproto
	// OAuth in the browser, which Bluesky recommends).
	Connect string `env:"BLUESKY_CONNECT" envDefault:"app-password"`
	// RedirectURI is the atproto OAuth callback: https in production,
	// where PostFlow's client id is its origin plus
	// /connections/bluesky/client-metadata.json; http://127.0.0.1 in
	// development (the atproto loopback client, nothing served).
	RedirectURI string `env:"BLUESKY_REDIRECT_URI"`
	// OAuthClientKey (32 bytes, base64 or hex: postflow keygen) makes
	// PostFlow a confidential atproto OAuth client, whose key is derived
	// from it and published at /connections/bluesky/jwks.json: Bluesky then
	// keeps sessions up to 2 years (a public client's end after 2 weeks).
	// Needs an https RedirectURI. Sessions are bound to the key: a new key
	// ends them at their next refresh.
	OAuthClientKey string `env:"BLUESKY_OAUTH_CLIENT_KEY" json:"-"`
	// ResolverURL resolves handles to DIDs (com.atproto.identity.resolveHandle).
	ResolverURL string `env:"BLUESKY_RESOLVER_URL" envDefault:"https://bsky.social"`
	// PLCURL is the did:plc directory.
	PLCURL string `env:"BLUESKY_PLC_URL" envDefault:"https://plc.directory"`
	// AppURL is the web app that post links point at.
	AppURL string `env:"BLUESKY_APP_URL" envDefault:"https://bsky.app"`
}

// Error is a configuration problem: the variable and what is wrong with it.
// Its text is the one line printed before a non-zero exit. It never holds a
// variable's value, which may be a secret.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return "config: " + e.Var + ": " + e.Problem }

// BlueskyOAuthClientKey decodes BLUESKY_OAUTH_CLIENT_KEY; nil when unset.
func (c *Config) BlueskyOAuthClientKey() ([]byte, error) {
	if c.Bluesky.OAuthClientKey == "" {
		return nil, nil
	}
	k, err := DecodeKey(c.Bluesky.OAuthClientKey)
	if err != nil {
		return nil, &Error{"BLUESKY_OAUTH_CLIENT_KEY", err.Error()}
	}
	return k, nil
}

// BlueskyOAuth reports whether Bluesky accounts connect with atproto OAuth.
func (c *Config) BlueskyOAuth() bool { return c.Bluesky.Enabled && c.Bluesky.Connect == "oauth" }

// Production reports whether NODE_ENV names the production environment.
func (c *Config) Production() bool { return c.Environment == EnvProduction }

// Load parses environ (KEY=value pairs, as os.Environ returns) and validates
// the result for role. The dev role leaves secrets and stores unset so that
// the dev stack can fill them; see FillDevDefaults.
//
// The error holds every problem found, one *Error per line (errors.Join),
// so that a user fixes them all in one go; Problems lists them.
func Load(environ []string, role Role) (*Config, error) {
	var c Config
	var ps problems
	if err := env.ParseWithOptions(&c, env.Options{Environment: env.ToMap(environ)}); err != nil {
		ps = fromEnvError(err)
	}
	// A value that did not parse is left at its zero value: its
	// validation would report the same variable a second time.
	unparsed := map[string]bool{}
	for _, e := range ps {
		if ce, ok := e.(*Error); ok {
			unparsed[ce.Var] = true
		}
	}
	for _, e := range c.validate(role) {
		if ce, ok := e.(*Error); !ok || !unparsed[ce.Var] {
			ps = append(ps, e)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every setting that each of roles needs. It returns nil or
// every problem, one *Error per line (errors.Join), each named once.
func (c *Config) Validate(roles ...Role) error {
	var ps problems
	seen := map[string]bool{}
	for _, role := range roles {
		for _, e := range c.validate(role) {
			if !seen[e.Error()] {
				seen[e.Error()] = true
				ps = append(ps, e)
			}
		}
	}
	return ps.err()
}

// Problems returns the configuration problems err holds (as Load and
// Validate return them), in the order they were found.
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		var ce *Error
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(err, &ce) {
				out = append(out, ce)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// problems collects what validation finds, so that all of it is reported.
type problems []error

func (ps *problems) add(name, problem string) { *ps = append(*ps, &Error{name, problem}) }

func (ps problems) err() error { return errors.Join(ps...) }

// validate returns every problem of the settings that role needs.
func (c *Config) validate(role Role) problems {
	var ps problems
	switch c.Environment {
	case EnvProduction, EnvDevelopment:
	default:
		ps.add("NODE_ENV", fmt.Sprintf("must be %q or %q, got %q", EnvProduction, EnvDevelopment, c.Environment))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		ps.add("LOG_LEVEL", fmt.Sprintf("must be debug, info, warn or error, got %q", c.LogLevel))
	}
	if c.Port < 0 || c.Port > 65535 {
		ps.add("PORT", fmt.Sprintf("must be a TCP port between 0 and 65535, got %d", c.Port))
	}
	if c.RateLimitHorizon <= 0 {
		ps.add("RATE_LIMIT_HORIZON", "must be a positive duration such as 48h")
	}
	if c.OverdueAfter <= 0 {
		ps.add("OVERDUE_AFTER", "must be a positive duration such as 10m")
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			ps.add("METRICS_ADDR", fmt.Sprintf("must be [host]:port, such as :9090, got %q", c.MetricsAddr))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			ps.add("METRICS_ADDR", fmt.Sprintf("must end in a port from 0 to 65535, got %q", c.MetricsAddr))
		}
	}
	if c.ShutdownTimeout <= 0 {
		ps.add("SHUTDOWN_TIMEOUT", "must be a positive duration such as 20s")
	}
	if c.MaxBodyBytes <= 0 {
		ps.add("MAX_BODY_BYTES", "must be a positive number of bytes")
	}
	if c.AccountExpiringDays < 0 || c.AccountExpiringDays > 365 {
		ps.add("ACCOUNT_EXPIRING_DAYS", fmt.Sprintf("must be a whole number of days from 0 (never) to 365, got %d", c.AccountExpiringDays))
	}
	if c.WebhookRetention < MinWebhookRetention || c.WebhookRetention > MaxWebhookRetention {
		ps.add("WEBHOOK_RETENTION", fmt.Sprintf("must be from 48h (longer than a webhook's ~27-hour delivery schedule) to 87600h (10 years), got %s", c.WebhookRetention))
	}
	if c.MediaMaxBytes <= 0 {
		ps.add("MEDIA_MAX_BYTES", "must be a positive number of bytes")
	}
	if c.MediaMaxPixels <= 0 {
		ps.add("MEDIA_MAX_PIXELS", "must be a positive number of pixels (width*height)")
	}
	if c.MediaDecodeMemory <= 0 {
		ps.add("MEDIA_DECODE_MEMORY", "must be a positive number of bytes")
	}
	if c.MediaImportTimeout <= 0 {
		ps.add("MEDIA_IMPORT_TIMEOUT", "must be a positive duration such as 20s")
	}

	// The dev stack fills what is missing after Load, then validates again
	// with the API and worker roles.
	if role == RoleDev {
		return append(ps, c.validateGiven()...)
	}

	required := []struct {
		name  string
		value string
		roles []Role
	}{
		{"MONGODB_URI", c.MongoURI, []Role{RoleAPI, RoleWorker}},
		{"REDIS_URL", c.RedisURL, []Role{RoleAPI}},
		{"TOKEN_ENCRYPTION_KEY", c.TokenEncryptionKey, []Role{RoleAPI, RoleWorker}},
		{"TEMPORAL_PAYLOAD_KEY", c.Temporal.PayloadKey, []Role{RoleAPI, RoleWorker}},
		{"FRONTEND_URL", c.FrontendURL, []Role{RoleAPI}},
		{"JWT_SECRET", c.JWTSecret, []Role{RoleAPI}},
		{"MEDIA_URL_SECRET", c.MediaURLSecret, []Role{RoleAPI}},
	}
	// Callbacks are required here, not in validateGiven: the dev stack
	// fills each with its own address.
	if c.LinkedIn.ClientID != "" && c.LinkedIn.RedirectURI == "" {
		ps.add("LINKEDIN_REDIRECT_URI", "is required with LINKEDIN_CLIENT_ID: the callback URL registered with LinkedIn")
	}
	if c.MastodonEnabled() && c.Mastodon.RedirectURI == "" {
		ps.add("MASTODON_REDIRECT_URI", "is required with MASTODON_ENABLED=true: PostFlow's callback URL, registered with each instance")
	}
	if c.BlueskyOAuth() && c.Bluesky.RedirectURI == "" {
		ps.add("BLUESKY_REDIRECT_URI", "is required with BLUESKY_CONNECT=oauth: PostFlow's callback URL, named in its client metadata")
	}
	for _, r := range required {
		for _, want := range r.roles {
			if want == role && strings.TrimSpace(r.value) == "" {
				ps.add(r.name, "is required but not set")
			}
		}
	}
	return append(ps, c.validateGiven()...)
}

// validateGiven checks the form of every value that is set, whatever the
// role: a value given by mistake is never silently ignored.
func (c *Config) validateGiven() problems {
	var ps problems
	for _, k := range []keyVars{c.tokenKeys(), c.Temporal.payloadKeys()} {
		if k.current != "" {
			ps = append(ps, k.check()...)
		}
	}
	if c.Temporal.CodecAnonymous && c.Production() {
		ps.add("TEMPORAL_CODEC_ANONYMOUS", "must not be true with NODE_ENV=production: the codec endpoint decrypts user data")
	}
	if c.SandboxEnabled && c.Production() {
		ps.add("SANDBOX_ENABLED", "must not be true with NODE_ENV=production: the sandbox has no authentication")
	}
	if c.AllowLocalServers && c.Production() {
		ps.add("ALLOW_LOCAL_SERVERS", "must not be true with NODE_ENV=production: users could make PostFlow call its own network")
	}
	if c.Temporal.UIOrigin != "" {
		if err := absoluteURL(c.Temporal.UIOrigin, "http", "https"); err != nil {
			ps.add("TEMPORAL_UI_ORIGIN", err.Error())
		}
	}
	if c.FrontendURL != "" {
		if err := absoluteURL(c.FrontendURL, "http", "https"); err != nil {
			ps.add("FRONTEND_URL", err.Error())
		}
	}
	// The drivers' own parsers, so that a URL they refuse is reported
	// here with the rest, not alone when the process dials. Their messages
	// can repeat the URL, password included: not shown.
	if c.MongoURI != "" {
		if err := absoluteURL(c.MongoURI, "mongodb", "mongodb+srv"); err != nil {
			ps.add("MONGODB_URI", err.Error())
		} else if _, err := connstring.ParseAndValidate(c.MongoURI); err != nil {
			ps.add("MONGODB_URI", "is not a valid connection string")
		}
	}
	if c.RedisURL != "" {
		if err := absoluteURL(c.RedisURL, "redis", "rediss", "unix"); err != nil {
			ps.add("REDIS_URL", err.Error())
		} else if _, err := redis.ParseURL(c.RedisURL); err != nil {
			ps.add("REDIS_URL", "is not a valid Redis URL")
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		ps.add("JWT_SECRET", fmt.Sprintf("must be at least 32 bytes for HS256, got %d", len(c.JWTSecret)))
	}
	if c.MediaURLSecret != "" && len(c.MediaURLSecret) < 32 {
		ps.add("MEDIA_URL_SECRET", fmt.Sprintf("must be at least 32 bytes, got %d (postflow keygen makes one)", len(c.MediaURLSecret)))
	}
	if c.PublicBaseURL != "" {
		if err := absoluteURL(c.PublicBaseURL, "https", "http"); err != nil {
			ps.add("PUBLIC_BASE_URL", err.Error())
		} else if u, _ := url.Parse(c.PublicBaseURL); u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			ps.add("PUBLIC_BASE_URL", "must be a base URL without query, fragment or credentials")
		}
	}
	if err := hostPort(c.Temporal.Address); err != nil {
		ps.add("TEMPORAL_ADDRESS", err.Error())
	}
	if c.Temporal.Namespace == "" {
		ps.add("TEMPORAL_NAMESPACE", "must not be empty")
	}
	if c.Temporal.TaskQueue == "" {
		ps.add("TEMPORAL_TASK_QUEUE", "must not be empty")
	}
	if (c.Temporal.TLSCertFile == "") != (c.Temporal.TLSKeyFile == "") {
		ps.add("TEMPORAL_TLS_CERT_FILE", "must be set together with TEMPORAL_TLS_KEY_FILE")
	} else if c.Temporal.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.Temporal.TLSCertFile, c.Temporal.TLSKeyFile); err != nil {
			ps.add("TEMPORAL_TLS_CERT_FILE", "cannot load the certificate and key: "+err.Error())
		}
	}
	if c.Temporal.TLSCAFile != "" {
		if pem, err := os.ReadFile(c.Temporal.TLSCAFile); err != nil {
			ps.add("TEMPORAL_TLS_CA_FILE", "cannot read: "+err.Error())
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			ps.add("TEMPORAL_TLS_CA_FILE", "holds no PEM certificate")
		}
	}
	for _, u := range []struct{ name, value string }{
		{"LINKEDIN_AUTH_URL", c.LinkedIn.AuthURL},
		{"LINKEDIN_TOKEN_URL", c.LinkedIn.TokenURL},
		{"LINKEDIN_API_URL", c.LinkedIn.APIURL},
		{"BLUESKY_RESOLVER_URL", c.Bluesky.ResolverURL},
		{"BLUESKY_PLC_URL", c.Bluesky.PLCURL},
		{"BLUESKY_APP_URL", c.Bluesky.AppURL},
	} {
		if err := absoluteURL(u.value, "http", "https"); err != nil {
			ps.add(u.name, err.Error())
		}
	}
	if c.LinkedIn.RedirectURI != "" {
		if err := absoluteURL(c.LinkedIn.RedirectURI, "http", "https"); err != nil {
			ps.add("LINKEDIN_REDIRECT_URI", err.Error())
		}
	}
	if !linkedInVersion.MatchString(c.LinkedIn.APIVersion) {
		ps.add("LINKEDIN_API_VERSION", fmt.Sprintf("must be a month as YYYYMM, got %q", c.LinkedIn.APIVersion))
	}
	if (c.LinkedIn.ClientID == "") != (c.LinkedIn.ClientSecret == "") {
		ps.add("LINKEDIN_CLIENT_SECRET", "LINKEDIN_CLIENT_ID and LINKEDIN_CLIENT_SECRET must be set together")
	}
	if c.SandboxURL != "" {
		if err := absoluteURL(c.SandboxURL, "http", "https"); err != nil {
			ps.add("SANDBOX_URL", err.Error())
		}
	}
	for _, u := range []struct{ name, value string }{
		{"MASTODON_REDIRECT_URI", c.Mastodon.RedirectURI},
		{"MASTODON_WEBSITE", c.Mastodon.Website},
	} {
		if u.value == "" {
			continue
		}
		if err := absoluteURL(u.value, "https", "http"); err != nil {
			ps.add(u.name, err.Error())
		}
	}
	switch c.Bluesky.Connect {
	case "app-password", "oauth":
	default:
		ps.add("BLUESKY_CONNECT", fmt.Sprintf("must be app-password or oauth, got %q", c.Bluesky.Connect))
	}
	if c.Bluesky.RedirectURI != "" {
		if err := absoluteURL(c.Bluesky.RedirectURI, "https", "http"); err != nil {
			ps.add("BLUESKY_REDIRECT_URI", err.Error())
		} else if u, _ := url.Parse(c.Bluesky.RedirectURI); u.Scheme == "http" && (c.Production() || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1")) {
			ps.add("BLUESKY_REDIRECT_URI", "must be https, or in development http://127.0.0.1 or http://[::1] (atproto's loopback client)")
		}
	}
	if c.Bluesky.OAuthClientKey != "" {
		if _, err := DecodeKey(c.Bluesky.OAuthClientKey); err != nil {
			ps.add("BLUESKY_OAUTH_CLIENT_KEY", err.Error())
		}
		if u, err := url.Parse(c.Bluesky.RedirectURI); err != nil || u.Scheme != "https" {
			ps.add("BLUESKY_OAUTH_CLIENT_KEY", "needs an https BLUESKY_REDIRECT_URI: a confidential client's id is an https URL (the loopback client is public)")
		}
	}
	if strings.TrimSpace(c.Mastodon.ClientName) == "" {
		ps.add("MASTODON_CLIENT_NAME", "must not be empty: instances show it on their authorize page")
	}
	return append(ps, c.validateMediaStore()...)
}

// validateMediaStore checks MEDIA_STORE and, for s3, its bucket. Nothing
// fills these in dev, so every role checks them; S3 settings without
// MEDIA_STORE=s3 are reported rather than ignored.
func (c *Config) validateMediaStore() problems {
	var ps problems
	s := c.S3
	switch c.MediaStore {
	case MediaStoreGridFS:
		set := []struct{ name, value string }{
			{"S3_ENDPOINT", s.Endpoint}, {"S3_REGION", s.Region}, {"S3_BUCKET", s.Bucket},
			{"S3_ACCESS_KEY_ID", s.AccessKeyID}, {"S3_SECRET_ACCESS_KEY", s.SecretAccessKey}, {"S3_PREFIX", s.Prefix},
		}
		for _, v := range set {
			if v.value != "" {
				ps.add(v.name, "is set but MEDIA_STORE is gridfs: set MEDIA_STORE=s3 to keep media in the bucket")
			}
		}
		return ps
	case MediaStoreS3:
	default:
		ps.add("MEDIA_STORE", fmt.Sprintf("must be gridfs or s3, got %q", c.MediaStore))
		return ps
	}
	for _, r := range []struct{ name, value string }{
		{"S3_BUCKET", s.Bucket}, {"S3_ACCESS_KEY_ID", s.AccessKeyID}, {"S3_SECRET_ACCESS_KEY", s.SecretAccessKey},
	} {
		if strings.TrimSpace(r.value) == "" {
			ps.add(r.name, "is required with MEDIA_STORE=s3")
		}
	}
	if s.Bucket != "" && !bucketName.MatchString(s.Bucket) {
		ps.add("S3_BUCKET", fmt.Sprintf("must be an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens), got %q", s.Bucket))
	}
	if s.Endpoint != "" {
		if err := absoluteURL(s.Endpoint, "https", "http"); err != nil {
			ps.add("S3_ENDPOINT", err.Error())
		}
	}
	return ps
}

// bucketName is S3's rule for bucket names ("Bucket naming rules",
// Amazon S3 User Guide), less its rarer exclusions.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// SandboxBaseURL is where the sandbox platform is served.
func (c *Config) SandboxBaseURL() string {
	if c.SandboxURL != "" {
		return strings.TrimRight(c.SandboxURL, "/")
	}
	return fmt.Sprintf("http://127.0.0.1:%d/sandbox", c.Port)
}

// EncryptionKeys decodes TOKEN_ENCRYPTION_KEY and the previous keys.
func (c *Config) EncryptionKeys() (current []byte, previous [][]byte, err error) {
	return c.tokenKeys().decode()
}

// PayloadKeys decodes TEMPORAL_PAYLOAD_KEY and the previous keys.
func (t Temporal) PayloadKeys() (current []byte, previous [][]byte, err error) {
	return t.payloadKeys().decode()
}

// keyVars is a current key and the retired ones, with their variables'
// names for errors.
type keyVars struct {
	name, current string
	prevName      string
	previous      []string
}

func (c *Config) tokenKeys() keyVars {
	return keyVars{"TOKEN_ENCRYPTION_KEY", c.TokenEncryptionKey, "TOKEN_ENCRYPTION_PREVIOUS_KEYS", c.TokenEncryptionPreviousKeys}
}

func (t Temporal) payloadKeys() keyVars {
	return keyVars{"TEMPORAL_PAYLOAD_KEY", t.PayloadKey, "TEMPORAL_PAYLOAD_PREVIOUS_KEYS", t.PayloadPreviousKeys}
}

// check returns a problem for the current key and for each previous key
// that does not decode.
func (k keyVars) check() problems {
	var ps problems
	if _, err := DecodeKey(k.current); err != nil {
		ps.add(k.name, err.Error())
	}
	for i, v := range k.previous {
		if _, err := DecodeKey(v); err != nil {
			ps.add(k.prevName, fmt.Sprintf("key %d %s", i+1, err))
		}
	}
	return ps
}

func (k keyVars) decode() (current []byte, previous [][]byte, err error) {
	if current, err = DecodeKey(k.current); err != nil {
		return nil, nil, &Error{k.name, err.Error()}
	}
	for i, v := range k.previous {
		b, err := DecodeKey(v)
		if err != nil {
			return nil, nil, &Error{k.prevName, fmt.Sprintf("key %d %s", i+1, err)}
		}
		previous = append(previous, b)
	}
	return current, previous, nil
}

var linkedInVersion = regexp.MustCompile(`^20[0-9]{2}(0[1-9]|1[0-2])$`)

// DecodeKey decodes a 32-byte AES-256 key written as base64 (standard or
// URL alphabet, padded or not) or hex. The error never repeats the key.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(s) == 64 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != 32 {
			return nil, fmt.Errorf("must be 32 bytes encoded as base64 or hex, got %d bytes (generate one with `postflow keygen`)", len(b))
		}
		return b, nil
	}
	return nil, errors.New("must be 32 bytes encoded as base64 or hex, got text that is neither (generate one with `postflow keygen`)")
}

// hostPort checks an address the Temporal client dials: host:port (an
// IPv6 host in brackets), with a host and a port from 1 to 65535. The SDK
// would take a malformed one and fail only when it connects.
func hostPort(addr string) error {
	if addr == "" {
		return errors.New("must be host:port, got an empty value")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port (such as temporal:7233), got %q", addr)
	}
	if host == "" {
		return fmt.Errorf("must name a host before the port, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("must end in a port from 1 to 65535, got %q", addr)
	}
	return nil
}

func absoluteURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Scheme != "unix") {
		return fmt.Errorf("must be an absolute URL (%s://...)", schemes[0])
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("must use scheme %s, got %q", strings.Join(schemes, " or "), u.Scheme)
}

// fromEnvError turns each error caarlos0/env gathered into an *Error that
// names the variable rather than the Go field.
func fromEnvError(err error) problems {
	errs := []error{err}
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		errs = agg.Errors
	}
	var ps problems
	for _, err := range errs {
		var pe env.ParseError
		if !errors.As(err, &pe) {
			ps = append(ps, fmt.Errorf("config: %w", err))
			continue
		}
		name := envName(reflect.TypeOf(Config{}), pe.Name)
		if name == "" {
			name = pe.Name
		}
		ps.add(name, "must be "+kindName(pe.Type))
	}
	return ps
}

func kindName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration such as 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	default:
		return "a valid " + t.String()
	}
}

// envName finds the env tag of the field called name, in t or its nested
// structs, or "" when there is none.
func envName(t reflect.Type, name string) string {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == name && f.Tag.Get("env") != "" {
			return f.Tag.Get("env")
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			if n := envName(f.Type, name); n != "" {
				return n
			}
		}
	}
	return ""
}
