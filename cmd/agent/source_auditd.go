package main

import (
	"github.com/dockward/dockward/pkg/auditd"
	"github.com/dockward/dockward/pkg/findings"
)

// buildAuditd builds the kernel audit source from the `audit:` section.
// Container names and the dockerd PID come from the other sources through
// the wiring, read lazily, so build order does not matter. Mode off still
// builds the source, so dockward_audit_up{mode="off"} tells it is off. The
// restore journal of unicast mode lives in the agent's state directory
// (host.state_dir), next to the binary baselines.
func buildAuditd(w *wiring, cfg Config, b sourceBase) (findings.Source, error) {
	if !cfg.Audit.Enabled {
		return nil, nil
	}
	src, err := auditd.New(cfg.Audit, auditd.Deps{
		Log:            b.log,
		Registerer:     b.reg,
		Sink:           b.sink,
		ContainerName:  w.ContainerName,
		ContainerImage: w.ContainerImage,
		DockerdPID:     w.DockerdPID,
		Host:           b.host,
		StateDir:       cfg.Host.StateDir,
	})
	if err != nil {
		return nil, err
	}
	// The watch checks (1.1.3-1.1.18) pass only when the source says it
	// compared the kernel's rules with the watches.
	w.SetObserver(auditd.Name, src.Observations)
	return src, nil
}
