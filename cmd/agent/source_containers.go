package main

import (
	"fmt"

	"github.com/dockward/dockward/pkg/containers"
	"github.com/dockward/dockward/pkg/findings"
)

// buildContainers builds the container judge from its config section. It
// shares the agent's one Docker client, publishes container names for audit
// attribution, and forwards daemon reload events to whoever listens.
func buildContainers(w *wiring, cfg Config) (findings.Source, error) {
	if !cfg.Containers.Enabled {
		return nil, nil
	}
	docker, err := w.Docker()
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	src, err := containers.New(cfg.Containers, containers.NewEngine(docker), w.store.SourceSink(containers.Name),
		w.reg, w.sourceLog(containers.Name), w.DaemonReloaded)
	if err != nil {
		return nil, err
	}
	w.SetContainerName(src.NameOf)
	return src, nil
}
