package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/devstack"
	"github.com/postflow/postflow/workflows"
)

// DevOptions configures `postflow dev`. Zero ports mean the conventional
// ones (7233, 8233, 27017, 6379); tests pick free ones.
type DevOptions struct {
	DataDir      string
	TemporalPort int
	UIPort       int
	MongoPort    int
	RedisPort    int
	// Environ is the process environment, as os.Environ returns it.
	Environ []string
	// Out receives the endpoint summary and the logs.
	Out io.Writer
	// NoWorker leaves the worker out: another process runs it, with
	// DevReady.WorkerEnv (the kill tests and the bench's memory figure).
	NoWorker bool
	// Ready, if not nil, is sent what is up once everything is.
	Ready chan<- DevReady
}

// DevReady is a running dev process.
type DevReady struct {
	API net.Addr
	// WorkerEnv is the environment of a `postflow worker` that joins
	// this stack. It holds the token encryption key.
	WorkerEnv []string
}

// RunDev runs the whole of PostFlow in one process until ctx is done: the
// embedded stack, the API and the worker. It stops them in the reverse order.
func RunDev(ctx context.Context, opts DevOptions) error {
	cfg, err := config.Load(opts.Environ, config.RoleDev)
	if err != nil {
		return err
	}
	logger := NewLogger(opts.Out, cfg)
	filled, err := fillDevDefaults(cfg, opts)
	if err != nil {
		return err
	}

	stack, err := devstack.Start(devstack.Options{
		DataDir:          opts.DataDir,
		TemporalPort:     opts.TemporalPort,
		UIPort:           opts.UIPort,
		MongoPort:        opts.MongoPort,
		RedisPort:        opts.RedisPort,
		Namespace:        cfg.Temporal.Namespace,
		SearchAttributes: workflows.SearchAttributes(),
		MongoURI:         cfg.MongoURI,
		RedisURL:         cfg.RedisURL,
		Reserved:         []int{cfg.Port},
		CodecEndpoint:    fmt.Sprintf("http://127.0.0.1:%d/temporal-codec", cfg.Port),
		Logger:           logger,
	})
	if err != nil {
		return err
	}
	defer func() {
		stack.Stop()
		logger.Info("dev stack stopped")
	}()
	cfg.MongoURI, cfg.RedisURL = stack.MongoURI, stack.RedisURL
	cfg.Temporal.Address = stack.Temporal.Address()
	if err := cfg.Validate(config.RoleAPI, config.RoleWorker); err != nil {
		return err
	}

	d, err := openDeps(cfg, logger, true)
	if err != nil {
		return err
	}
	defer d.close()
	stop, err := startWatchers(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	defer stop()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := make(chan net.Addr, 1)
	workerStarted := make(chan struct{})
	apiErr := make(chan error, 1)
	workerErr := make(chan error, 1)
	// Dev secrets are generated and headers are trusted: only this machine
	// may call the API.
	go func() { apiErr <- serveAPI(ctx, cfg, d, logger, "127.0.0.1", bound) }()
	if opts.NoWorker {
		close(workerStarted)
		go func() { <-ctx.Done(); workerErr <- nil }()
	} else {
		go func() { workerErr <- runWorker(ctx, cfg, d, logger, workerStarted) }()
	}

	// Say "running" only once the API listens and the worker polls.
	var apiAddr net.Addr
	for apiAddr == nil || workerStarted != nil {
		select {
		case apiAddr = <-bound:
		case <-workerStarted:
			workerStarted = nil
		case err := <-apiErr:
			cancel()
			return errors.Join(err, <-workerErr)
		case err := <-workerErr:
			cancel()
			return errors.Join(err, <-apiErr)
		case <-ctx.Done():
			return errors.Join(<-apiErr, <-workerErr)
		}
	}
	printEndpoints(opts.Out, cfg, stack, apiAddr, opts.DataDir, filled)
	if opts.Ready != nil {
		opts.Ready <- DevReady{API: apiAddr, WorkerEnv: workerEnv(cfg)}
	}

	// The first process to stop, on its own or at ctx's end, stops the other.
	var uiErr <-chan error = stack.Temporal.UIErr()
	var errs []error
	select {
	case err := <-apiErr:
		errs = append(errs, err)
		cancel()
		errs = append(errs, <-workerErr)
	case err := <-workerErr:
		errs = append(errs, err)
		cancel()
		errs = append(errs, <-apiErr)
	case err := <-uiErr:
		errs = append(errs, fmt.Errorf("temporal web ui: %w", err))
		cancel()
		errs = append(errs, <-apiErr, <-workerErr)
	case <-ctx.Done():
		// The embedded server logs every poll the worker's shutdown cuts
		// short as an error; none of them is one.
		stack.Temporal.Quiet()
		errs = append(errs, <-apiErr, <-workerErr)
	}
	return errors.Join(errs...)
}

// fillDevDefaults sets what a developer should not have to: a token
// encryption key and a JWT secret kept in the data folder (so that tokens
// stored by one run decrypt in the next), trusted identity headers, and a
// frontend URL. It returns the names it filled. A value the developer did
// set is kept, and was validated by Load.
func fillDevDefaults(cfg *config.Config, opts DevOptions) ([]string, error) {
	var filled []string
	if cfg.TokenEncryptionKey == "" {
		v, _, err := devstack.Secret(opts.DataDir, "token-encryption.key", 32)
		if err != nil {
			return nil, err
		}
		cfg.TokenEncryptionKey = v
		filled = append(filled, "TOKEN_ENCRYPTION_KEY (kept in "+opts.DataDir+")")
	}
	if cfg.Temporal.PayloadKey == "" {
		v, _, err := devstack.Secret(opts.DataDir, "temporal-payload.key", 32)
		if err != nil {
			return nil, err
		}
		cfg.Temporal.PayloadKey = v
		filled = append(filled, "TEMPORAL_PAYLOAD_KEY (kept in "+opts.DataDir+")")
	}
	if cfg.JWTSecret == "" {
		v, _, err := devstack.Secret(opts.DataDir, "jwt-secret", 32)
		if err != nil {
			return nil, err
		}
		cfg.JWTSecret = v
		filled = append(filled, "JWT_SECRET (kept in "+opts.DataDir+")")
	}
	if cfg.MediaURLSecret == "" {
		v, _, err := devstack.Secret(opts.DataDir, "media-url-secret", 32)
		if err != nil {
			return nil, err
		}
		cfg.MediaURLSecret = v
		filled = append(filled, "MEDIA_URL_SECRET (kept in "+opts.DataDir+")")
	}
	if cfg.PublicBaseURL == "" {
		cfg.PublicBaseURL = fmt.Sprintf("http://127.0.0.1:%d", cfg.Port)
		filled = append(filled, "PUBLIC_BASE_URL="+cfg.PublicBaseURL)
	}
	if !isSet(opts.Environ, "AUTH_TRUST_HEADERS") {
		cfg.AuthTrustHeaders = true
		filled = append(filled, "AUTH_TRUST_HEADERS=true")
	}
	if cfg.LinkedIn.ClientID != "" && cfg.LinkedIn.RedirectURI == "" {
		cfg.LinkedIn.RedirectURI = fmt.Sprintf("http://127.0.0.1:%d/connections/callback/linkedin", cfg.Port)
		filled = append(filled, "LINKEDIN_REDIRECT_URI="+cfg.LinkedIn.RedirectURI)
	}
	if cfg.Mastodon.RedirectURI == "" && (cfg.Mastodon.Enabled == nil || *cfg.Mastodon.Enabled) {
		cfg.Mastodon.RedirectURI = fmt.Sprintf("http://127.0.0.1:%d/connections/callback/mastodon", cfg.Port)
		filled = append(filled, "MASTODON_REDIRECT_URI="+cfg.Mastodon.RedirectURI)
	}
	if cfg.Bluesky.Enabled && cfg.Bluesky.RedirectURI == "" {
		// atproto's loopback client: nothing to serve or register. Filled
		// whatever BLUESKY_CONNECT says: accounts connected with OAuth
		// refresh as the client they were connected by.
		cfg.Bluesky.RedirectURI = fmt.Sprintf("http://127.0.0.1:%d/connections/callback/bluesky", cfg.Port)
		filled = append(filled, "BLUESKY_REDIRECT_URI="+cfg.Bluesky.RedirectURI)
	}
	if !isSet(opts.Environ, "ALLOW_LOCAL_SERVERS") {
		cfg.AllowLocalServers = true
		filled = append(filled, "ALLOW_LOCAL_SERVERS=true")
	}
	if !isSet(opts.Environ, "SANDBOX_ENABLED") {
		cfg.SandboxEnabled = true
		filled = append(filled, "SANDBOX_ENABLED=true")
	}
	// One host, the worker in this process: an API without a polling
	// worker is not ready. With --no-worker the worker is another
	// process's, as for an API scaled apart.
	if !isSet(opts.Environ, "READYZ_REQUIRE_WORKER") && !opts.NoWorker {
		cfg.ReadyzRequireWorker = true
		filled = append(filled, "READYZ_REQUIRE_WORKER=true")
	}
	if cfg.FrontendURL == "" {
		cfg.FrontendURL = "http://localhost:3000"
		filled = append(filled, "FRONTEND_URL="+cfg.FrontendURL)
	}
	// The dev Web UI has no login; the API only listens on 127.0.0.1.
	if !isSet(opts.Environ, "TEMPORAL_CODEC_ANONYMOUS") {
		cfg.Temporal.CodecAnonymous = true
		filled = append(filled, "TEMPORAL_CODEC_ANONYMOUS=true")
	}
	if cfg.Temporal.UIOrigin == "" && opts.UIPort >= 0 {
		ui := opts.UIPort
		if ui == 0 {
			ui = 8233 // devstack's default
		}
		cfg.Temporal.UIOrigin = fmt.Sprintf("http://127.0.0.1:%d", ui)
		filled = append(filled, "TEMPORAL_UI_ORIGIN="+cfg.Temporal.UIOrigin)
	}
	return filled, nil
}

// workerEnv is the environment a separate worker process needs to join
// the dev stack of cfg.
func workerEnv(cfg *config.Config) []string {
	var out []string
	for _, kv := range config.Environ(cfg) {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PORT", "METRICS_ADDR", "SANDBOX_URL":
			// Addresses the dev process listens on itself; the sandbox
			// is served by its API, at the address below.
			continue
		}
		out = append(out, kv)
	}
	return append(out, "SANDBOX_URL="+cfg.SandboxBaseURL())
}

func isSet(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

func printEndpoints(w io.Writer, cfg *config.Config, stack *devstack.Stack, apiAddr net.Addr, dataDir string, filled []string) {
	host := func(a net.Addr) string {
		if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
			return fmt.Sprintf("127.0.0.1:%d", t.Port)
		}
		return a.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nPostFlow dev is running.\n")
	fmt.Fprintf(&b, "  API            http://%s  (health: /healthz, /readyz)\n", host(apiAddr))
	if u := stack.Temporal.UIURL(); u != "" {
		fmt.Fprintf(&b, "  Temporal UI    %s\n", u)
	}
	fmt.Fprintf(&b, "  Temporal       %s  (namespace %s, task queue %s)\n", stack.Temporal.Address(), cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
	if cfg.SandboxEnabled {
		fmt.Fprintf(&b, "  Sandbox        %s/feed  (a pretend network to connect and publish to)\n", cfg.SandboxBaseURL())
	}
	fmt.Fprintf(&b, "  MongoDB        %s\n", redactURL(stack.MongoURI))
	fmt.Fprintf(&b, "  Redis          %s\n", redactURL(stack.RedisURL))
	if len(filled) > 0 {
		fmt.Fprintf(&b, "Filled development defaults: %s\n", strings.Join(filled, "; "))
	}
	fmt.Fprintf(&b, "Press Ctrl-C to stop; data stays in %s.\n\n", dataDir)
	_, _ = io.WriteString(w, b.String())
}

// redactURL hides the password of a URL given by the developer.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
