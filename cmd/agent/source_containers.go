package main

import (
	"fmt"

	"github.com/dockward/dockward/pkg/containers"
	"github.com/dockward/dockward/pkg/findings"
)

// buildContainers builds the container judge from its config section. It
// shares the agent's one Docker client, publishes container names for audit
// attribution, and forwards daemon reload events to whoever listens.
func buildContainers(w *wiring, cfg Config, b sourceBase) (findings.Source, error) {
	if !cfg.Containers.Enabled {
		return nil, nil
	}
	docker, err := w.Docker()
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	src, err := containers.New(cfg.Containers, containers.Deps{
		Log:            b.log,
		Registerer:     b.reg,
		Sink:           b.sink,
		Engine:         containers.NewEngine(docker),
		OnDaemonReload: w.DaemonReloaded,
		HostRoot:       b.host, // for /proc and dockerd's sockets

	})
	if err != nil {
		return nil, err
	}
	w.SetContainerIdentity(src.NameOf, src.ImageOf)
	w.SetObserver(containers.Name, src.Observations)
	return src, nil
}
