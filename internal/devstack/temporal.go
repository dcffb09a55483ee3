package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// TemporalOptions configures the embedded Temporal server and its Web UI.
type TemporalOptions struct {
	// DBFile is the SQLite file that holds every namespace, workflow and
	// timer, so that scheduled work survives a restart. Empty means in memory.
	DBFile string
	// IP the frontend, the internal services and the UI bind to.
	IP string
	// Port of the frontend gRPC API (7233 by convention).
	Port int
	// UIPort of the Web UI (8233 by convention); 0 disables the UI.
	UIPort int
	// Namespace to create when it does not exist yet.
	Namespace string
	// SearchAttributes to register on a namespace created here. Namespaces
	// that already exist are left alone; the worker adds what is missing.
	SearchAttributes map[string]enumspb.IndexedValueType
	// CodecEndpoint is the payload codec the Web UI calls to decode payloads.
	CodecEndpoint string
	// Reserved are ports that others will bind later (the API's, say): the
	// internal services must not pick them.
	Reserved []int
	Logger   *slog.Logger
}

// Temporal is a running embedded Temporal server, with its Web UI when asked.
type Temporal struct {
	server  temporal.Server
	quiet   func()
	ui      *uiserver.Server
	uiErr   chan error
	address string
	uiURL   string
}

// Address is the frontend's host:port.
func (t *Temporal) Address() string { return t.address }

// UIURL is the Web UI's address, or "" without a UI.
func (t *Temporal) UIURL() string { return t.uiURL }

// StartTemporal starts the server and returns once its frontend accepts
// connections. The UI starts in the background.
func StartTemporal(opts TemporalOptions) (*Temporal, error) {
	if opts.Logger == nil {
		return nil, errors.New("temporal: missing logger")
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	// Temporal's listeners end the process on a taken port, with a log
	// line of their own; say which flag to change instead.
	for _, p := range []struct {
		name string
		port int
	}{{"frontend (--temporal-port)", opts.Port}, {"Web UI (--ui-port)", opts.UIPort}} {
		if p.port <= 0 {
			continue
		}
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", hostPort(opts.IP, p.port))
		if err != nil {
			return nil, fmt.Errorf("temporal: the %s port %d is taken: %w", p.name, p.port, err)
		}
		l.Close()
	}
	logger := newServerLogger(opts.Logger)
	quiet := func() { logger.min.Set(slog.LevelError + 4) }
	var server temporal.Server
	for try := 1; ; try++ {
		serverOpts, err := opts.serverOptions(logger)
		if err != nil {
			return nil, err
		}
		server, err = temporal.NewServer(serverOpts...)
		if err == nil {
			break
		}
		// The internal services' ports are picked free, then bound by
		// the server: another process's connection may take one in
		// between (the configured ports were checked above). New picks.
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("temporal: build server: %w", err)
		}
		opts.Logger.Warn("temporal: a port picked for an internal service was taken meanwhile; picking others", "try", try)
	}
	if err := server.Start(); err != nil {
		return nil, fmt.Errorf("temporal: start server: %w", err)
	}
	t := &Temporal{server: server, quiet: quiet, address: hostPort(opts.IP, opts.Port)}

	if opts.UIPort != 0 {
		t.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
			Host:                opts.IP,
			Port:                opts.UIPort,
			TemporalGRPCAddress: t.address,
			EnableUI:            true,
			DefaultNamespace:    opts.Namespace,
			Codec:               uiconfig.Codec{Endpoint: opts.CodecEndpoint},
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			DisableNewsFetch:    true,
		}))
		t.uiErr = make(chan error, 1)
		t.uiURL = "http://" + hostPort(opts.IP, opts.UIPort)
		// ui.Start blocks until Stop; a failure to bind is reported by Err.
		go func() { t.uiErr <- t.ui.Start() }()
	}
	return t, nil
}

// UIErr reports a UI server that stopped on its own (a port in use, say).
func (t *Temporal) UIErr() <-chan error { return t.uiErr }

// Quiet silences the server. Call it when shutting down: the server logs
// every poll that a stopping worker cuts short as an error, and its own
// system workers warn about each connection the shutdown closes; none of
// it is news to a developer who pressed Ctrl-C.
func (t *Temporal) Quiet() { t.quiet() }

// Stop stops the UI, then the server; the SQLite file keeps its state.
func (t *Temporal) Stop() {
	t.quiet()
	if t.ui != nil {
		t.ui.Stop()
	}
	if err := t.server.Stop(); err != nil {
		// Nothing left to do about it at shutdown but say so.
		_ = err
	}
}

func (o *TemporalOptions) serverOptions(logger *serverLogger) ([]temporal.ServerOption, error) {
	conf, err := o.serverConfig()
	if err != nil {
		return nil, err
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal: claim mapper: %w", err)
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(hostPort(o.IP, svc.RPC.GRPCPort))
	}
	dyn := dynamicconfig.StaticClient{
		// The visibility store answers the UI's list pages; the default rate
		// is low enough to throttle a busy dev session.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		// One partition per task queue: partitions spread a queue's load
		// over matching hosts, and this stack has one. With the default
		// four, under load (make bench), some runs' first workflow task
		// waited up to 7 s and p99 was 4.9-7.7 s; with one, p99 was
		// 1.8-3.7 s in 14 of 15 runs (one saw 6.8 s, cause not found).
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
	}
	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	}, nil
}

func (o *TemporalOptions) serverConfig() (*config.Config, error) {
	const clusterName = "active"
	reserved := append([]int{o.Port, o.UIPort}, o.Reserved...)
	httpPort, err := freePort(o.IP, reserved)
	if err != nil {
		return nil, err
	}
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30_000_000_000 // 30 s
	conf.Global.Membership.BroadcastAddress = o.IP
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	sqlConf, err := o.sqlConfig(clusterName)
	if err != nil {
		return nil, err
	}
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             hostPort(o.IP, o.Port),
				HTTPAddress:            hostPort(o.IP, httpPort),
				// A fixed id: a new one on each start would not match the
				// one stored in the SQLite file by the first start.
				ClusterID: "7e1c9a4e-2f4b-4c8e-9d61-6f0a3b5c2d10",
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = o.IP
		if name == "frontend" {
			svc.RPC.GRPCPort = o.Port
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = freePort(o.IP, reserved); err != nil {
			return nil, err
		}
		reserved = append(reserved, svc.RPC.GRPCPort)
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = hostPort(o.IP, o.Port)
	return &conf, nil
}

func (o *TemporalOptions) sqlConfig(clusterName string) (*config.SQL, error) {
	conf := config.SQL{PluginName: sqliteplugin.PluginName}
	if o.DBFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = "postflow-" + strconv.Itoa(os.Getpid())
	} else {
		// WAL lets readers run beside the writer. synchronous=NORMAL keeps
		// every commit through a crash of the process (Ctrl-C, kill -9);
		// only a power cut may lose the last ones, which a dev stack can bear.
		conf.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "1"}
		conf.DatabaseName = o.DBFile
		if _, err := os.Stat(o.DBFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o700); err != nil {
				return nil, fmt.Errorf("temporal: data folder: %w", err)
			}
			if err := sqliteschema.SetupSchema(&conf); err != nil {
				return nil, fmt.Errorf("temporal: set up SQLite schema: %w", err)
			}
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("temporal: namespace %q: %w", o.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(&conf, ns); err != nil {
		return nil, fmt.Errorf("temporal: create namespace %q: %w", o.Namespace, err)
	}
	return &conf, nil
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// freePort asks the kernel for a port that is free now and not reserved.
// The internal services need ports of their own that nobody configures;
// the kernel may hand out a port that was just released by someone who
// means to bind it again (a test's pick for the API), hence reserved.
func freePort(ip string, reserved []int) (int, error) {
	for range 20 {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", hostPort(ip, 0))
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !slices.Contains(reserved, port) {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: every port offered was reserved")
}
