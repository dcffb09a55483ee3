// Package devstack runs everything PostFlow depends on inside one process
// for development and tests: a Temporal server with its Web UI (SQLite), a
// MongoDB-protocol server (FerretDB on SQLite) and a Redis-protocol server.
// Nothing here is used in production, where the same binary dials real
// services.
package devstack

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/postflow/postflow/internal/devmongo"
	"github.com/postflow/postflow/internal/devredis"
)

// Options says where the stack listens and keeps its data. A zero port
// means the conventional one; tests pass ports of their own.
type Options struct {
	// DataDir holds the SQLite files of Temporal and FerretDB. Empty keeps
	// Temporal in memory and FerretDB in a folder the caller must provide,
	// so DataDir is required in practice.
	DataDir string
	IP      string

	TemporalPort int
	UIPort       int // -1 disables the Web UI
	MongoPort    int
	RedisPort    int

	Namespace        string
	SearchAttributes map[string]enumspb.IndexedValueType
	CodecEndpoint    string
	// Reserved are ports bound after the stack starts (the API's).
	Reserved []int

	// MongoURI and RedisURL name external servers to use instead of the
	// embedded ones.
	MongoURI string
	RedisURL string

	Logger *slog.Logger
}

// Stack is the running set of embedded servers.
type Stack struct {
	Temporal *Temporal
	mongo    *devmongo.Mongo
	redis    *devredis.Redis

	// MongoURI and RedisURL reach the servers in use, embedded or not.
	MongoURI string
	RedisURL string
}

// Start starts every server of the stack, or none: on an error, what had
// started is stopped again.
func Start(opts Options) (s *Stack, err error) {
	if opts.DataDir == "" {
		return nil, errors.New("devstack: a data folder is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	port := func(p, def int) int {
		if p == 0 {
			return def
		}
		return p
	}
	s = &Stack{MongoURI: opts.MongoURI, RedisURL: opts.RedisURL}
	defer func() {
		if err != nil {
			s.Stop()
			s = nil
		}
	}()

	if s.MongoURI == "" {
		addr := hostPort(opts.IP, port(opts.MongoPort, 27017))
		if s.mongo, err = devmongo.Start(addr, filepath.Join(opts.DataDir, "mongo"), opts.Logger); err != nil {
			return s, err
		}
		s.MongoURI = s.mongo.URI() + "postflow"
	}
	if s.RedisURL == "" {
		if s.redis, err = devredis.Start(hostPort(opts.IP, port(opts.RedisPort, 6379))); err != nil {
			return s, err
		}
		s.RedisURL = s.redis.URL()
	}
	uiPort := port(opts.UIPort, 8233)
	if opts.UIPort < 0 {
		uiPort = 0
	}
	s.Temporal, err = StartTemporal(TemporalOptions{
		DBFile:           filepath.Join(opts.DataDir, "temporal.db"),
		IP:               opts.IP,
		Port:             port(opts.TemporalPort, 7233),
		UIPort:           uiPort,
		Namespace:        opts.Namespace,
		SearchAttributes: opts.SearchAttributes,
		CodecEndpoint:    opts.CodecEndpoint,
		Reserved:         append([]int{opts.MongoPort, opts.RedisPort}, opts.Reserved...),
		Logger:           opts.Logger,
	})
	if err != nil {
		return s, fmt.Errorf("devstack: %w", err)
	}
	return s, nil
}

// Stop stops the servers in the reverse order of Start. It is safe on a
// partly started stack.
func (s *Stack) Stop() {
	if s.Temporal != nil {
		s.Temporal.Stop()
	}
	if s.redis != nil {
		s.redis.Stop()
	}
	if s.mongo != nil {
		s.mongo.Stop()
	}
}
