package main

import (
	"fmt"
	"io"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the one zap logger of the process. JSON by default,
// because log pipelines parse it; console when a person reads it.
func newLogger(out io.Writer, level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w (want debug, info, warn or error)", flagLogLevel, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--%s: unknown format %q (want json or console)", flagLogFormat, format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), lvl)
	return zap.New(core), nil
}

// slogFor bridges the exporter-toolkit's slog logging into zap, so that
// there is one log stream with one format, tagged with the source.
func slogFor(log *zap.Logger, source string) *slog.Logger {
	return slog.New(zapslog.NewHandler(log.With(zap.String("source", source)).Core()))
}
