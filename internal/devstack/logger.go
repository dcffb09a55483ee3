package devstack

import (
	"context"
	"log/slog"
	"os"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger lets the embedded Temporal server write through PostFlow's
// slog handler. The server is chatty at info level about its own start-up,
// so its messages are one level quieter than they claim: an operator sees
// warnings and errors, and LOG_LEVEL=debug shows the rest.
type serverLogger struct {
	l   *slog.Logger
	min *slog.LevelVar // raised to quiet the server while it stops
}

func newServerLogger(l *slog.Logger) *serverLogger {
	return &serverLogger{l: l.With("component", "temporal-server"), min: new(slog.LevelVar)}
}

var _ log.Logger = (*serverLogger)(nil)

func (s *serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if level < s.min.Level() || !s.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.l.LogAttrs(ctx, level, msg, attrs...)
}

func (s *serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug-4, msg, tags) }
func (s *serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelDebug, msg, tags) }
func (s *serverLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s *serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }
func (s *serverLogger) DPanic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
}
func (s *serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}
func (s *serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	os.Exit(1)
}
