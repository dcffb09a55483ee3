// Package temporalconn dials Temporal from PostFlow's configuration (a
// local dev server, a self-hosted cluster over mTLS, or Temporal Cloud with
// an API key) and registers the search attributes PostFlow needs.
package temporalconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/postflow/postflow/internal/config"
)

// Options returns the client options for cfg. TLS is on when asked for, when
// a client certificate is given, or with an API key (Temporal Cloud only
// accepts API keys over TLS).
func Options(cfg config.Temporal, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Logger:    sdklog.NewStructuredLogger(logger.With("component", "temporal-client")),
	}
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	}
	if cfg.TLS || cfg.TLSCertFile != "" || cfg.APIKey != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
		if cfg.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				return opts, &config.Error{Var: "TEMPORAL_TLS_CERT_FILE", Problem: "cannot load the certificate and key: " + err.Error()}
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return opts, &config.Error{Var: "TEMPORAL_TLS_CA_FILE", Problem: "cannot read: " + err.Error()}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, &config.Error{Var: "TEMPORAL_TLS_CA_FILE", Problem: "holds no PEM certificate"}
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

// Dial connects lazily: the process starts even while Temporal is down, and
// /readyz says so until it answers. dc converts payloads (nil: the SDK's
// default); PostFlow's encrypts them. mh receives the SDK's metrics (nil:
// none are kept).
func Dial(cfg config.Temporal, logger *slog.Logger, dc converter.DataConverter, mh client.MetricsHandler) (client.Client, error) {
	opts, err := Options(cfg, logger)
	if err != nil {
		return nil, err
	}
	opts.DataConverter = dc
	opts.MetricsHandler = mh
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal: client for %s: %w", cfg.Address, err)
	}
	return c, nil
}

// ErrSearchAttributesNotAllowed means the server refused to register search
// attributes (Temporal Cloud, or a cluster where the caller is no admin):
// an operator must add them by hand.
var ErrSearchAttributesNotAllowed = errors.New("temporal: not allowed to register search attributes")

// EnsureSearchAttributes adds the attributes of want that the namespace
// lacks. It returns the names it added. A type clash with an existing
// attribute is an error: the workflow's upserts would fail at run time.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) ([]string, error) {
	op := c.OperatorService()
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, classify(err, "list search attributes")
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return nil, fmt.Errorf("temporal: search attribute %s is %s in namespace %s, PostFlow needs %s", name, got, namespace, typ)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		var exists *serviceerror.AlreadyExists
		if !errors.As(err, &exists) {
			return nil, classify(err, "add search attributes")
		}
	}
	added := make([]string, 0, len(missing))
	for name := range missing {
		added = append(added, name)
	}
	sort.Strings(added)
	return added, nil
}

func classify(err error, what string) error {
	var denied *serviceerror.PermissionDenied
	var unimplemented *serviceerror.Unimplemented
	if errors.As(err, &denied) || errors.As(err, &unimplemented) {
		return fmt.Errorf("%w: %s: %v", ErrSearchAttributesNotAllowed, what, err)
	}
	return fmt.Errorf("temporal: %s: %w", what, err)
}
