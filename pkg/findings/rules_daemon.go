package findings

// Daemon rules: CIS section 2, judged from the settings dockerd really runs
// with (GET /info, its command line, daemon.json).
func init() {
	d := ruleOf(KindDaemon, "host")
	register(
		d("daemon.config_invalid", "2", High, "daemon.json cannot be parsed; dockerd will not start with it",
			"Fix the syntax error at the reported position: python3 -m json.tool /etc/docker/daemon.json."),
		d("daemon.icc_enabled", "2.2", Medium, "Inter-container communication on the default bridge is enabled",
			"Set \"icc\": false in daemon.json and use user-defined networks."),
		d("daemon.log_level", "2.3", Low, "Daemon log level is not info",
			"Set \"log-level\": \"info\" in daemon.json."),
		d("daemon.iptables_disabled", "2.4", Medium, "Docker may not change iptables",
			"Remove \"iptables\": false from daemon.json (and --iptables=false from the command line)."),
		d("daemon.insecure_registry", "2.5", High, "An insecure registry is configured",
			"Remove the entry from \"insecure-registries\" and give the registry a TLS certificate."),
		d("daemon.aufs_driver", "2.6", Medium, "The aufs storage driver is in use",
			"Switch to overlay2: \"storage-driver\": \"overlay2\" in daemon.json."),
		d("daemon.tcp_without_tls", "2.7", Critical, "The Docker API listens on TCP without TLS client verification",
			"Set \"tlsverify\": true with tlscacert, tlscert and tlskey, or listen on the Unix socket only."),
		d("daemon.no_default_ulimits", "2.8", Low, "No default ulimits are set",
			"Set \"default-ulimits\" in daemon.json (for example nofile and nproc)."),
		d("daemon.no_userns_remap", "2.9", Low, "User namespace remapping is off",
			"Set \"userns-remap\": \"default\" in daemon.json."),
		d("daemon.no_authz_plugin", "2.12", Info, "No authorization plugin is configured",
			"Add an authorization plugin with \"authorization-plugins\" in daemon.json."),
		d("daemon.local_log_driver", "2.13", Info, "Container logs stay on the host (no remote log driver)",
			"Set \"log-driver\" to a remote driver (syslog, journald shipped off-host, fluentd, gelf...)."),
		d("daemon.no_new_privileges_default", "2.14", Low, "Containers may gain new privileges by default",
			"Set \"no-new-privileges\": true in daemon.json."),
		d("daemon.live_restore_off", "2.15", Low, "Live restore is off",
			"Set \"live-restore\": true in daemon.json."),
		d("daemon.userland_proxy", "2.16", Low, "The userland proxy is on",
			"Set \"userland-proxy\": false in daemon.json."),
		d("daemon.seccomp_profile", "2.17", Medium, "The daemon's default seccomp profile is not Docker's default",
			"Remove \"seccomp-profile\" from daemon.json, or point it at a reviewed profile."),
		d("daemon.experimental", "2.18", Low, "Experimental features are enabled",
			"Remove \"experimental\": true from daemon.json."),
	)
}
