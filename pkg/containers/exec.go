package containers

import (
	"context"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/events"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dockward/dockward/pkg/findings"
)

// execCreated reads the exec's process config while dockerd still has it:
// a short exec may be gone by the time its exec_start event is handled.
func (s *Source) execCreated(ctx context.Context, ev events.Message) {
	execID := ev.Actor.Attributes["execID"]
	if execID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	details, err := s.eng.ExecProcess(ctx, execID)
	if err != nil {
		return // retried at exec_start
	}
	if len(s.execs) >= maxPendingExecs {
		clear(s.execs)
	}
	s.execs[execID] = details
}

// execStarted counts and logs one exec: an event, not a finding.
func (s *Source) execStarted(ctx context.Context, ev events.Message) {
	execID := ev.Actor.Attributes["execID"]
	details, ok := s.execs[execID]
	delete(s.execs, execID)
	var inspectErr error
	if !ok && execID != "" {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		details, inspectErr = s.eng.ExecProcess(ctx, execID)
		cancel()
		ok = inspectErr == nil
	}
	id := ev.Actor.ID
	info, knownContainer := s.infoOf(id)
	privileged, root, tty := "unknown", "unknown", "unknown"
	var user, command string
	if ok && details.ProcessConfig != nil {
		pc := details.ProcessConfig
		privileged = strconv.FormatBool(pc.Privileged != nil && *pc.Privileged)
		user, tty = pc.User, strconv.FormatBool(pc.Tty)
		command = strings.TrimSpace(strings.Join(append([]string{pc.Entrypoint}, pc.Arguments...), " "))
		// Without --user the exec runs as the container's own user.
		if user != "" || knownContainer {
			root = strconv.FormatBool(isRootUser(orDefault(user, info.user)))
		}
	}
	if command == "" {
		// The event's action carries the command after "exec_start: ".
		_, command, _ = strings.Cut(string(ev.Action), ": ")
	}
	s.m.execs.WithLabelValues(privileged, root).Inc()

	name := info.name
	if name == "" {
		name = ev.Actor.Attributes["name"]
	}
	image := ev.Actor.Attributes["image"]
	s.noteExec(privileged == "true", root == "true", name)
	level := zapcore.InfoLevel
	if privileged == "true" || root == "true" {
		level = zapcore.WarnLevel
	}
	fields := []zap.Field{
		zap.Dict("container", zap.String("id", findings.ShortID(id)), zap.String("name", name), zap.String("image", image)),
		zap.String("exec_id", execID),
		zap.String("user", orDefault(user, "(container default)")),
		zap.String("command", command),
		zap.String("privileged", privileged),
		zap.String("root", root),
		zap.String("tty", tty),
	}
	if inspectErr != nil {
		fields = append(fields, zap.NamedError("exec_inspect_error", inspectErr))
	}
	s.log.Log(level, "docker exec started", fields...)
}
