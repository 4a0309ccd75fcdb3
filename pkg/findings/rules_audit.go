package findings

// Audit rules: CIS 1.1.x, the kernel audit watches on Docker's files. A
// missing watch's finding names the exact 1.1.x check of its path; a
// dockerd that is not audited at all fails 1.1.3, auditing of the daemon.
func init() {
	a := ruleOf(KindAudit, "audit")
	register(
		a("audit.watch_missing", "1.1", Medium, "A Docker file is not covered by a kernel audit watch",
			"Add the watch: auditctl -w <path> -p wa -k <key> (and persist it in /etc/audit/rules.d)."),
		a("audit.detection_rule_missing", "", Medium, "A runtime detection's calls or files are not audited by the kernel's rules",
			"Install deploy/audit/50-dockward-escape.rules (and the release_agent rules of docs/audit.md) in /etc/audit/rules.d and run augenrules --load, or run dockward in unicast mode."),
		a("audit.daemon_unaudited", "1.1.3", High, "dockerd started before audit was enabled and is not audited",
			"Boot with audit=1 on the kernel command line, or restart docker after audit is enabled."),
	)
}
