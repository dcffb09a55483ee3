package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/webhooks"
)

const (
	b64Key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	secret = "a-jwt-secret-that-is-long-enough-for-hs256"
)

// prodEnv is a complete production environment for the API role.
func prodEnv(overrides ...string) []string {
	env := []string{
		"NODE_ENV=production",
		"MONGODB_URI=mongodb://db:27017/postflow",
		"REDIS_URL=redis://cache:6379/0",
		"TOKEN_ENCRYPTION_KEY=" + b64Key,
		"TEMPORAL_PAYLOAD_KEY=" + hexKey,
		"FRONTEND_URL=https://app.example.com",
		"JWT_SECRET=" + secret,
		"MEDIA_URL_SECRET=" + secret,
	}
	return append(env, overrides...) // later entries win, as in a shell
}

func TestLoadValid(t *testing.T) {
	cfg, err := config.Load(prodEnv("TEMPORAL_ADDRESS=temporal:7233", "PORT=9000"), config.RoleAPI)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !cfg.Production() || cfg.Port != 9000 || cfg.Temporal.Address != "temporal:7233" {
		t.Errorf("got production=%v port=%d temporal=%q", cfg.Production(), cfg.Port, cfg.Temporal.Address)
	}
	if cfg.Temporal.Namespace != "default" || cfg.Temporal.TaskQueue != "postflow-publish" {
		t.Errorf("defaults: namespace=%q task queue=%q", cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
	}
	if cfg.AuthTrustHeaders {
		t.Error("AUTH_TRUST_HEADERS must be off unless asked for")
	}
	if cfg.LinkedIn.APIURL != "https://api.linkedin.com" {
		t.Errorf("LINKEDIN_API_URL default = %q", cfg.LinkedIn.APIURL)
	}
	if b := cfg.Bluesky; !b.Enabled || b.Connect != "app-password" || cfg.BlueskyOAuth() || b.ResolverURL != "https://bsky.social" || b.PLCURL != "https://plc.directory" || b.AppURL != "https://bsky.app" {
		t.Errorf("Bluesky defaults = %+v", b)
	}
	if cfg.MediaMaxBytes != 20<<20 || cfg.MediaMaxPixels != 50_000_000 || cfg.MediaDecodeMemory != 512<<20 || cfg.MediaImportTimeout != 20*time.Second || cfg.PublicBaseURL != "" {
		t.Errorf("media defaults: %d bytes, %d pixels, decode memory %d, import %s, public base %q", cfg.MediaMaxBytes, cfg.MediaMaxPixels, cfg.MediaDecodeMemory, cfg.MediaImportTimeout, cfg.PublicBaseURL)
	}
	if cfg.LinkedIn.PagesEnabled {
		t.Error("LINKEDIN_PAGES_ENABLED must be off unless LinkedIn approved the app for pages")
	}
	on, err := config.Load(prodEnv("LINKEDIN_PAGES_ENABLED=true"), config.RoleAPI)
	if err != nil || !on.LinkedIn.PagesEnabled {
		t.Errorf("LINKEDIN_PAGES_ENABLED=true: %v, %v", on != nil && on.LinkedIn.PagesEnabled, err)
	}
}

// Mastodon is on where a redirect URI is set, unless MASTODON_ENABLED says
// otherwise.
func TestMastodonEnabled(t *testing.T) {
	const redirect = "MASTODON_REDIRECT_URI=https://api.example.com/connections/callback/mastodon"
	for _, tt := range []struct {
		name string
		env  []string
		want bool
	}{
		{"nothing set", prodEnv(), false},
		{"a redirect URI", prodEnv(redirect), true},
		{"a redirect URI, disabled", prodEnv(redirect, "MASTODON_ENABLED=false"), false},
		{"enabled with a redirect URI", prodEnv(redirect, "MASTODON_ENABLED=true"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(tt.env, config.RoleWorker)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MastodonEnabled() != tt.want || cfg.Mastodon.ClientName != "PostFlow" {
				t.Errorf("enabled %v, client name %q; want %v, PostFlow", cfg.MastodonEnabled(), cfg.Mastodon.ClientName, tt.want)
			}
		})
	}
}

// Temporal addresses of every form the client dials are taken.
func TestTemporalAddressForms(t *testing.T) {
	for _, addr := range []string{"temporal:7233", "127.0.0.1:7233", "[::1]:7233", "my-ns.a1b2c.tmprl.cloud:7233", "localhost:65535"} {
		if _, err := config.Load(prodEnv("TEMPORAL_ADDRESS="+addr), config.RoleWorker); err != nil {
			t.Errorf("TEMPORAL_ADDRESS=%s: %v", addr, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		role    config.Role
		wantVar string
		want    string // part of the problem text
	}{
		{"short key", prodEnv("TOKEN_ENCRYPTION_KEY=c2hvcnQ="), config.RoleAPI, "TOKEN_ENCRYPTION_KEY", "got 5 bytes"},
		{"garbage key", prodEnv("TOKEN_ENCRYPTION_KEY=not a key!"), config.RoleAPI, "TOKEN_ENCRYPTION_KEY", "neither"},
		{"bad key even in dev", []string{"TOKEN_ENCRYPTION_KEY=abc"}, config.RoleDev, "TOKEN_ENCRYPTION_KEY", "32 bytes"},
		{"bad previous key", prodEnv("TOKEN_ENCRYPTION_PREVIOUS_KEYS=" + hexKey + ",c2hvcnQ="), config.RoleWorker, "TOKEN_ENCRYPTION_PREVIOUS_KEYS", "key 2 must be 32 bytes"},
		{"relative frontend", prodEnv("FRONTEND_URL=/app"), config.RoleAPI, "FRONTEND_URL", "absolute URL"},
		{"frontend scheme", prodEnv("FRONTEND_URL=ftp://x.example"), config.RoleAPI, "FRONTEND_URL", "http or https"},
		{"port not a number", prodEnv("PORT=eighty"), config.RoleAPI, "PORT", "whole number"},
		{"port out of range", prodEnv("PORT=70000"), config.RoleAPI, "PORT", "between 0 and 65535"},
		{"bool", prodEnv("AUTH_TRUST_HEADERS=maybe"), config.RoleAPI, "AUTH_TRUST_HEADERS", "true or false"},
		{"nested bool", prodEnv("TEMPORAL_TLS=yes please"), config.RoleWorker, "TEMPORAL_TLS", "true or false"},
		{"duration", prodEnv("SHUTDOWN_TIMEOUT=soon"), config.RoleAPI, "SHUTDOWN_TIMEOUT", "duration"},
		{"overdue after zero", prodEnv("OVERDUE_AFTER=0s"), config.RoleWorker, "OVERDUE_AFTER", "positive"},
		{"metrics addr without a port", prodEnv("METRICS_ADDR=metrics"), config.RoleWorker, "METRICS_ADDR", "[host]:port"},
		{"metrics addr port out of range", prodEnv("METRICS_ADDR=:99999"), config.RoleAPI, "METRICS_ADDR", "0 to 65535"},
		{"readyz flag", prodEnv("READYZ_REQUIRE_WORKER=sometimes"), config.RoleAPI, "READYZ_REQUIRE_WORKER", "true or false"},
		{"environment", prodEnv("NODE_ENV=staging"), config.RoleAPI, "NODE_ENV", `"production" or "development"`},
		{"mongo missing", prodEnv("MONGODB_URI="), config.RoleWorker, "MONGODB_URI", "required"},
		{"mongo scheme", prodEnv("MONGODB_URI=postgres://db"), config.RoleAPI, "MONGODB_URI", "mongodb"},
		{"redis missing for api", prodEnv("REDIS_URL="), config.RoleAPI, "REDIS_URL", "required"},
		{"jwt missing", prodEnv("JWT_SECRET="), config.RoleAPI, "JWT_SECRET", "required"},
		{"jwt short", prodEnv("JWT_SECRET=short"), config.RoleAPI, "JWT_SECRET", "at least 32 bytes"},
		{"media url secret missing", prodEnv("MEDIA_URL_SECRET="), config.RoleAPI, "MEDIA_URL_SECRET", "required"},
		{"media url secret short", prodEnv("MEDIA_URL_SECRET=short"), config.RoleWorker, "MEDIA_URL_SECRET", "at least 32 bytes"},
		{"webhook retention under the delivery schedule", prodEnv("WEBHOOK_RETENTION=24h"), config.RoleWorker, "WEBHOOK_RETENTION", "from 48h"},
		{"webhook retention just under 48h", prodEnv("WEBHOOK_RETENTION=47h59m"), config.RoleWorker, "WEBHOOK_RETENTION", "got 47h59m0s"},
		{"webhook retention negative", prodEnv("WEBHOOK_RETENTION=-720h"), config.RoleAPI, "WEBHOOK_RETENTION", "from 48h"},
		{"webhook retention past 10 years", prodEnv("WEBHOOK_RETENTION=100000h"), config.RoleWorker, "WEBHOOK_RETENTION", "87600h"},
		{"webhook retention in days", prodEnv("WEBHOOK_RETENTION=30d"), config.RoleWorker, "WEBHOOK_RETENTION", "duration"},
		{"webhook retention in dev", []string{"WEBHOOK_RETENTION=1h"}, config.RoleDev, "WEBHOOK_RETENTION", "from 48h"},
		{"media max bytes", prodEnv("MEDIA_MAX_BYTES=0"), config.RoleAPI, "MEDIA_MAX_BYTES", "positive"},
		{"media max bytes not a number", prodEnv("MEDIA_MAX_BYTES=20MB"), config.RoleAPI, "MEDIA_MAX_BYTES", "whole number"},
		{"media max pixels", prodEnv("MEDIA_MAX_PIXELS=-1"), config.RoleAPI, "MEDIA_MAX_PIXELS", "positive"},
		{"media decode memory", prodEnv("MEDIA_DECODE_MEMORY=0"), config.RoleAPI, "MEDIA_DECODE_MEMORY", "positive"},
		{"media import timeout", prodEnv("MEDIA_IMPORT_TIMEOUT=0s"), config.RoleAPI, "MEDIA_IMPORT_TIMEOUT", "positive"},
		{"public base url relative", prodEnv("PUBLIC_BASE_URL=/api"), config.RoleWorker, "PUBLIC_BASE_URL", "absolute URL"},
		{"public base url with a query", prodEnv("PUBLIC_BASE_URL=https://api.example.com/?x=1"), config.RoleAPI, "PUBLIC_BASE_URL", "without query"},
		{"key missing for worker", prodEnv("TOKEN_ENCRYPTION_KEY="), config.RoleWorker, "TOKEN_ENCRYPTION_KEY", "required"},
		{"payload key missing for the api", prodEnv("TEMPORAL_PAYLOAD_KEY="), config.RoleAPI, "TEMPORAL_PAYLOAD_KEY", "required"},
		{"payload key missing for worker", prodEnv("TEMPORAL_PAYLOAD_KEY="), config.RoleWorker, "TEMPORAL_PAYLOAD_KEY", "required"},
		{"short payload key", prodEnv("TEMPORAL_PAYLOAD_KEY=c2hvcnQ="), config.RoleAPI, "TEMPORAL_PAYLOAD_KEY", "got 5 bytes"},
		{"bad previous payload key", prodEnv("TEMPORAL_PAYLOAD_PREVIOUS_KEYS=" + hexKey + ",nope"), config.RoleWorker, "TEMPORAL_PAYLOAD_PREVIOUS_KEYS", "key 2"},
		{"anonymous codec in production", prodEnv("TEMPORAL_CODEC_ANONYMOUS=true"), config.RoleAPI, "TEMPORAL_CODEC_ANONYMOUS", "production"},
		{"sandbox in production", prodEnv("SANDBOX_ENABLED=true"), config.RoleAPI, "SANDBOX_ENABLED", "production"},
		{"sandbox in a production worker", prodEnv("SANDBOX_ENABLED=true"), config.RoleWorker, "SANDBOX_ENABLED", "production"},
		{"local servers in production", prodEnv("ALLOW_LOCAL_SERVERS=true"), config.RoleWorker, "ALLOW_LOCAL_SERVERS", "production"},
		{"ui origin not a URL", prodEnv("TEMPORAL_UI_ORIGIN=temporal-ui:8233"), config.RoleAPI, "TEMPORAL_UI_ORIGIN", ""},
		{"tls pair", prodEnv("TEMPORAL_TLS_CERT_FILE=/c.pem"), config.RoleWorker, "TEMPORAL_TLS_CERT_FILE", "TEMPORAL_TLS_KEY_FILE"},
		{"linkedin endpoint", prodEnv("LINKEDIN_API_URL=localhost:9999"), config.RoleWorker, "LINKEDIN_API_URL", "absolute URL"},
		{"linkedin half credentials", prodEnv("LINKEDIN_CLIENT_ID=abc", "LINKEDIN_REDIRECT_URI=https://api.example.com/connections/callback/linkedin"), config.RoleAPI, "LINKEDIN_CLIENT_SECRET", "together"},
		{"linkedin version", prodEnv("LINKEDIN_API_VERSION=2026-10"), config.RoleWorker, "LINKEDIN_API_VERSION", "YYYYMM"},
		{"linkedin pages switch", prodEnv("LINKEDIN_PAGES_ENABLED=approved"), config.RoleAPI, "LINKEDIN_PAGES_ENABLED", "true or false"},
		{"linkedin redirect", prodEnv("LINKEDIN_CLIENT_ID=abc", "LINKEDIN_CLIENT_SECRET=def"), config.RoleAPI, "LINKEDIN_REDIRECT_URI", "required"},
		{"mastodon enabled without a redirect", prodEnv("MASTODON_ENABLED=true"), config.RoleWorker, "MASTODON_REDIRECT_URI", "required"},
		{"mastodon redirect not a URL", prodEnv("MASTODON_REDIRECT_URI=/connections/callback/mastodon"), config.RoleAPI, "MASTODON_REDIRECT_URI", "absolute URL"},
		{"mastodon website not a URL", prodEnv("MASTODON_WEBSITE=postflow.example"), config.RoleAPI, "MASTODON_WEBSITE", "absolute URL"},
		{"mastodon client name empty", prodEnv("MASTODON_CLIENT_NAME= "), config.RoleAPI, "MASTODON_CLIENT_NAME", "empty"},
		{"mastodon enabled not a bool", prodEnv("MASTODON_ENABLED=yes please"), config.RoleAPI, "MASTODON_ENABLED", "true or false"},
		{"bluesky resolver", prodEnv("BLUESKY_RESOLVER_URL=bsky.social"), config.RoleAPI, "BLUESKY_RESOLVER_URL", "absolute URL"},
		{"bluesky plc", prodEnv("BLUESKY_PLC_URL=ftp://plc.example"), config.RoleWorker, "BLUESKY_PLC_URL", "http or https"},
		{"bluesky app", prodEnv("BLUESKY_APP_URL=/app"), config.RoleWorker, "BLUESKY_APP_URL", "absolute URL"},
		{"bluesky connect", prodEnv("BLUESKY_CONNECT=password"), config.RoleAPI, "BLUESKY_CONNECT", "app-password or oauth"},
		{"bluesky oauth without a redirect", prodEnv("BLUESKY_CONNECT=oauth"), config.RoleWorker, "BLUESKY_REDIRECT_URI", "required"},
		{"bluesky redirect over http in production", prodEnv("BLUESKY_CONNECT=oauth", "BLUESKY_REDIRECT_URI=http://127.0.0.1:8080/connections/callback/bluesky"), config.RoleAPI, "BLUESKY_REDIRECT_URI", "https"},
		{"bluesky client key not a key", prodEnv("BLUESKY_CONNECT=oauth", "BLUESKY_REDIRECT_URI=https://api.example.com/connections/callback/bluesky", "BLUESKY_OAUTH_CLIENT_KEY=short"), config.RoleAPI, "BLUESKY_OAUTH_CLIENT_KEY", ""},
		{"bluesky client key without an https redirect", prodEnv("BLUESKY_OAUTH_CLIENT_KEY=" + hexKey), config.RoleWorker, "BLUESKY_OAUTH_CLIENT_KEY", "https"},
		{"bluesky redirect not a URL", prodEnv("BLUESKY_REDIRECT_URI=/connections/callback/bluesky"), config.RoleAPI, "BLUESKY_REDIRECT_URI", "absolute URL"},
		{"log level", prodEnv("LOG_LEVEL=loud"), config.RoleAPI, "LOG_LEVEL", "debug, info"},
		{"temporal address without a port", prodEnv("TEMPORAL_ADDRESS=nohostport"), config.RoleWorker, "TEMPORAL_ADDRESS", "host:port"},
		{"temporal address as a URL", prodEnv("TEMPORAL_ADDRESS=http://temporal:7233"), config.RoleAPI, "TEMPORAL_ADDRESS", "host:port"},
		{"temporal address without a host", prodEnv("TEMPORAL_ADDRESS=:7233"), config.RoleWorker, "TEMPORAL_ADDRESS", "host"},
		{"temporal port zero", prodEnv("TEMPORAL_ADDRESS=temporal:0"), config.RoleWorker, "TEMPORAL_ADDRESS", "1 to 65535"},
		{"temporal port too large", prodEnv("TEMPORAL_ADDRESS=temporal:70000"), config.RoleWorker, "TEMPORAL_ADDRESS", "1 to 65535"},
		{"temporal port not a number", prodEnv("TEMPORAL_ADDRESS=temporal:grpc"), config.RoleWorker, "TEMPORAL_ADDRESS", "1 to 65535"},
		{"temporal address in dev", []string{"TEMPORAL_ADDRESS=nohostport"}, config.RoleDev, "TEMPORAL_ADDRESS", "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.env, tt.role)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load error = %v, want *config.Error", err)
			}
			if ce.Var != tt.wantVar || !strings.Contains(ce.Problem, tt.want) {
				t.Errorf("got %q, want %s: ...%s...", err, tt.wantVar, tt.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: "+tt.wantVar+": ") {
				t.Errorf("message %q is not one line naming the variable", msg)
			}
		})
	}
}

// TestLoadReportsEveryProblem: with several bad variables, one run names
// them all, one line each and each once, so the user fixes them together.
func TestLoadReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		role config.Role
		want []string // the variables named, in order
	}{
		{
			name: "parse and validation errors together",
			env:  prodEnv("PORT=eighty", "SHUTDOWN_TIMEOUT=soon", "AUTH_TRUST_HEADERS=maybe", "LOG_LEVEL=loud", "JWT_SECRET=short", "FRONTEND_URL=/app"),
			role: config.RoleAPI,
			want: []string{"PORT", "AUTH_TRUST_HEADERS", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "FRONTEND_URL", "JWT_SECRET"},
		},
		{
			name: "missing and invalid",
			env:  []string{"NODE_ENV=production", "TOKEN_ENCRYPTION_KEY=abc", "SANDBOX_ENABLED=true"},
			role: config.RoleWorker,
			want: []string{"MONGODB_URI", "TEMPORAL_PAYLOAD_KEY", "TOKEN_ENCRYPTION_KEY", "SANDBOX_ENABLED"},
		},
		{
			name: "a malformed Temporal address with the rest",
			env:  prodEnv("TEMPORAL_ADDRESS=nohostport", "JWT_SECRET=short", "FRONTEND_URL=/app"),
			role: config.RoleAPI,
			want: []string{"FRONTEND_URL", "JWT_SECRET", "TEMPORAL_ADDRESS"},
		},
		{
			name: "every previous key",
			env:  prodEnv("TOKEN_ENCRYPTION_KEY=abc", "TOKEN_ENCRYPTION_PREVIOUS_KEYS=nope,"+hexKey+",c2hvcnQ="),
			role: config.RoleWorker,
			want: []string{"TOKEN_ENCRYPTION_KEY", "TOKEN_ENCRYPTION_PREVIOUS_KEYS", "TOKEN_ENCRYPTION_PREVIOUS_KEYS"},
		},
		{
			// The dev stack fills the stores and secrets later; what the
			// user set is checked now, all of it.
			name: "dev reports what the user set",
			env:  []string{"TOKEN_ENCRYPTION_KEY=abc", "MONGODB_URI=postgres://db", "TEMPORAL_TLS=yes please", "TEMPORAL_UI_ORIGIN=ui:8233"},
			role: config.RoleDev,
			want: []string{"TEMPORAL_TLS", "TOKEN_ENCRYPTION_KEY", "TEMPORAL_UI_ORIGIN", "MONGODB_URI"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.env, tt.role)
			if err == nil {
				t.Fatal("Load accepted the environment")
			}
			var got []string
			for _, p := range config.Problems(err) {
				got = append(got, p.Var)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("problems name %v, want %v", got, tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines for %d problems:\n%s", len(lines), len(tt.want), err)
			}
			for i, line := range lines {
				if !strings.HasPrefix(line, "config: "+tt.want[i]+": ") {
					t.Errorf("line %d = %q, want it to name %s", i+1, line, tt.want[i])
				}
			}
		})
	}
}

// TestLoadChecksWhatTheDriversRefuse: URLs that look right but that the
// MongoDB or Redis driver refuses, and TLS files that do not load, are
// reported with the rest, not one at a time when the process dials.
func TestLoadChecksWhatTheDriversRefuse(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(prodEnv(
		"MONGODB_URI=mongodb://db:99999/postflow",
		"REDIS_URL=redis://cache:6379/not-a-db",
		"TEMPORAL_TLS_CERT_FILE="+filepath.Join(dir, "missing.pem"),
		"TEMPORAL_TLS_KEY_FILE="+filepath.Join(dir, "missing.key"),
		"TEMPORAL_TLS_CA_FILE="+junk,
	), config.RoleWorker)
	var got []string
	for _, p := range config.Problems(err) {
		got = append(got, p.Var)
	}
	want := "MONGODB_URI REDIS_URL TEMPORAL_TLS_CERT_FILE TEMPORAL_TLS_CA_FILE"
	if strings.Join(got, " ") != want {
		t.Errorf("problems name %v, want %s; error:\n%v", got, want, err)
	}
	if err != nil && (strings.Contains(err.Error(), "99999") || strings.Contains(err.Error(), "not-a-db")) {
		t.Errorf("the error repeats a URL:\n%v", err)
	}
}

// TestValidateRoles: the dev process checks its filled configuration for
// both roles at once and names each problem once.
func TestValidateRoles(t *testing.T) {
	cfg, err := config.Load(nil, config.RoleDev)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(config.RoleAPI, config.RoleWorker)
	var got []string
	for _, p := range config.Problems(err) {
		got = append(got, p.Var)
	}
	want := "MONGODB_URI REDIS_URL TOKEN_ENCRYPTION_KEY TEMPORAL_PAYLOAD_KEY FRONTEND_URL JWT_SECRET MEDIA_URL_SECRET"
	if strings.Join(got, " ") != want {
		t.Errorf("Validate(api, worker) names %v, want %s", got, want)
	}
}

func TestErrorsNeverRepeatSecrets(t *testing.T) {
	const leaked = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw" // base64, 31 bytes
	for _, env := range [][]string{
		prodEnv("TOKEN_ENCRYPTION_KEY=" + leaked),
		prodEnv("JWT_SECRET=" + leaked[:20]),
		prodEnv("MEDIA_URL_SECRET=" + leaked[:20]),
		prodEnv("MEDIA_STORE=s3", "S3_SECRET_ACCESS_KEY="+leaked, "S3_BUCKET=No_Such"),
		prodEnv("S3_SECRET_ACCESS_KEY=" + leaked), // set without MEDIA_STORE=s3
	} {
		_, err := config.Load(env, config.RoleAPI)
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), leaked[:20]) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
}

func TestRoles(t *testing.T) {
	// The worker serves no HTTP and keeps no OAuth state: it needs neither
	// Redis, nor a JWT secret, nor the frontend's URL.
	worker := []string{"NODE_ENV=production", "MONGODB_URI=mongodb://db/postflow", "TOKEN_ENCRYPTION_KEY=" + hexKey, "TEMPORAL_PAYLOAD_KEY=" + b64Key}
	if _, err := config.Load(worker, config.RoleWorker); err != nil {
		t.Errorf("worker: %v", err)
	}
	if _, err := config.Load(worker, config.RoleAPI); err == nil {
		t.Error("api: want an error for the missing variables")
	}
	// The dev role leaves every store and secret to the dev stack.
	if _, err := config.Load(nil, config.RoleDev); err != nil {
		t.Errorf("dev: %v", err)
	}
}

func TestEncryptionKeys(t *testing.T) {
	cfg, err := config.Load(prodEnv("TOKEN_ENCRYPTION_PREVIOUS_KEYS="+hexKey+","+b64Key), config.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	current, previous, err := cfg.EncryptionKeys()
	if err != nil || len(current) != 32 || len(previous) != 2 || previous[0][1] != 1 {
		t.Errorf("EncryptionKeys = %d bytes, %d previous, %v", len(current), len(previous), err)
	}
	cfg, err = config.Load(prodEnv("TEMPORAL_PAYLOAD_PREVIOUS_KEYS="+b64Key), config.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	current, previous, err = cfg.Temporal.PayloadKeys()
	if err != nil || len(current) != 32 || len(previous) != 1 || current[1] != 1 {
		t.Errorf("PayloadKeys = %d bytes, %d previous, %v", len(current), len(previous), err)
	}
}

func TestDecodeKey(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"base64", b64Key, true},
		{"base64 raw", strings.TrimRight(b64Key, "="), true},
		{"base64 url", "_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_"[:43], true},
		{"hex", hexKey, true},
		{"hex upper", strings.ToUpper(hexKey), true},
		{"hex short", hexKey[:62], false},
		{"base64 of 31 bytes", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ==", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := config.DecodeKey(tt.in)
			if tt.ok && (err != nil || len(key) != 32) {
				t.Errorf("DecodeKey = %d bytes, %v; want 32 bytes", len(key), err)
			}
			if !tt.ok && err == nil {
				t.Errorf("DecodeKey accepted %q", tt.in)
			}
		})
	}
}

// TestDevLeavesCallbacksToTheStack: `postflow dev` fills a network's
// callback with its own address after Load, so Load for the dev role must
// not require one (it did for LinkedIn: the README's dev default never
// applied); the api role still does.
func TestDevLeavesCallbacksToTheStack(t *testing.T) {
	env := []string{"LINKEDIN_CLIENT_ID=abc", "LINKEDIN_CLIENT_SECRET=def"}
	if _, err := config.Load(env, config.RoleDev); err != nil {
		t.Errorf("dev without LINKEDIN_REDIRECT_URI: %v", err)
	}
	if _, err := config.Load(prodEnv(env...), config.RoleAPI); err == nil || !strings.Contains(err.Error(), "LINKEDIN_REDIRECT_URI") {
		t.Errorf("api without LINKEDIN_REDIRECT_URI: %v; want it required", err)
	}
}

// MEDIA_STORE picks the store; s3 needs its bucket and keys, and every
// problem of them is reported at once.
func TestMediaStore(t *testing.T) {
	s3 := []string{"MEDIA_STORE=s3", "S3_BUCKET=postflow-media", "S3_ACCESS_KEY_ID=AKIAEXAMPLE", "S3_SECRET_ACCESS_KEY=wJalrXUtnFEMIexample"}
	tests := []struct {
		name     string
		env      []string
		wantVars []string // the variables reported, in order; none: valid
		store    string   // MediaStore when valid
	}{
		{"default is gridfs", nil, nil, config.MediaStoreGridFS},
		{"s3 complete", s3, nil, config.MediaStoreS3},
		{"s3 with endpoint, path style and prefix", append(s3, "S3_ENDPOINT=http://minio:9000", "S3_FORCE_PATH_STYLE=true", "S3_PREFIX=postflow/", "S3_REGION=eu-west-3"), nil, config.MediaStoreS3},
		{"unknown store", []string{"MEDIA_STORE=disk"}, []string{"MEDIA_STORE"}, ""},
		{"s3 with nothing", []string{"MEDIA_STORE=s3"}, []string{"S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}, ""},
		{"bad bucket and endpoint", append(s3, "S3_BUCKET=Media_Bucket", "S3_ENDPOINT=minio:9000"), []string{"S3_BUCKET", "S3_ENDPOINT"}, ""},
		{"bad path style", append(s3, "S3_FORCE_PATH_STYLE=sure"), []string{"S3_FORCE_PATH_STYLE"}, ""},
		{"s3 settings without s3", []string{"S3_BUCKET=postflow-media", "S3_ENDPOINT=http://minio:9000"}, []string{"S3_ENDPOINT", "S3_BUCKET"}, ""},
	}
	for _, tt := range tests {
		for _, role := range []config.Role{config.RoleAPI, config.RoleWorker, config.RoleDev} {
			t.Run(tt.name+"/"+string(role), func(t *testing.T) {
				env := tt.env
				if role != config.RoleDev {
					env = prodEnv(tt.env...)
				}
				cfg, err := config.Load(env, role)
				var got []string
				for _, p := range config.Problems(err) {
					got = append(got, p.Var)
				}
				if strings.Join(got, ",") != strings.Join(tt.wantVars, ",") {
					t.Fatalf("problems = %v (%v), want %v", got, err, tt.wantVars)
				}
				if err == nil && cfg.MediaStore != tt.store {
					t.Errorf("MediaStore = %q, want %q", cfg.MediaStore, tt.store)
				}
			})
		}
	}
}

// WEBHOOK_RETENTION: 30 days unless set; any duration from the floor
// (webhooks.MinRetention, which outlasts the delivery schedule) to 10
// years is taken as given.
func TestWebhookRetention(t *testing.T) {
	if config.MinWebhookRetention != webhooks.MinRetention {
		t.Fatalf("MinWebhookRetention %s, webhooks.MinRetention %s: they must agree", config.MinWebhookRetention, webhooks.MinRetention)
	}
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{
		{"", webhooks.DefaultRetention},
		{"48h", 48 * time.Hour},
		{"2160h", 90 * 24 * time.Hour},
		{"87600h", config.MaxWebhookRetention},
	} {
		t.Run(tt.value, func(t *testing.T) {
			env := prodEnv()
			if tt.value != "" {
				env = prodEnv("WEBHOOK_RETENTION=" + tt.value)
			}
			cfg, err := config.Load(env, config.RoleWorker)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.WebhookRetention != tt.want {
				t.Errorf("WebhookRetention = %s, want %s", cfg.WebhookRetention, tt.want)
			}
		})
	}
}
