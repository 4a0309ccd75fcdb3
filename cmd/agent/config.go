package main

import (
	"github.com/dockward/dockward/pkg/auditd"
	"github.com/dockward/dockward/pkg/containers"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/watcher"
)

// Config is the whole config file. Each source owns its section's type.
type Config struct {
	Containers      containers.Config `yaml:"containers"`
	Audit           auditd.Config     `yaml:"audit"`
	Host            watcher.Config    `yaml:"host"`
	findings.Policy `yaml:",inline"`
}
