package daemonjson

// knownKeys are the daemon.json directives dockerd accepts on Linux (the
// union over Docker 19.03 to 28, so an option of a newer or older release
// is not mistaken for a typo) besides the ones Config decodes.
var knownKeys = map[string]struct{}{}

func init() {
	for _, k := range []string{
		"allow-direct-routing", "allow-nondistributable-artifacts", "api-cors-header", "bip", "bip6",
		"bridge", "bridge-accept-fwmark", "builder", "cdi-spec-dirs", "cgroup-parent", "cluster-advertise",
		"cluster-store", "cluster-store-opts", "containerd-namespace", "containerd-plugin-namespace",
		"containerd-plugins-namespace", "cpu-rt-period", "cpu-rt-runtime", "cri-containerd", "data-root",
		"default-address-pools", "default-cgroupns-mode", "default-gateway", "default-gateway-v6",
		"default-ipc-mode", "default-network-opts", "default-runtime", "default-shm-size",
		"deprecated-key-path", "disable-legacy-registry", "dns", "dns-opts", "dns-search", "exec-opts",
		"exec-root", "features", "firewall-backend", "fixed-cidr", "fixed-cidr-v6", "graph",
		"host-gateway-ip", "host-gateway-ips", "http-proxy", "https-proxy", "init", "init-path", "ip",
		"ip-forward", "ip-forward-no-drop", "ip-masq", "ip6tables", "ipv4", "ipv6", "labels", "log-format",
		"log-opts", "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts",
		"metrics-addr", "min-api-version", "mtu", "network-control-plane-mtu", "network-diagnostic-port",
		"no-proxy", "node-generic-resources", "oom-score-adjust", "proxies", "raw-logs", "registry-mirrors",
		"rootless", "runtimes", "selinux-enabled", "shutdown-timeout", "storage-opts",
		"swarm-default-advertise-addr", "userland-proxy-path",
	} {
		knownKeys[k] = struct{}{}
	}
}
