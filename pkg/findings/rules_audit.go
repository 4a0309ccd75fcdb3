package findings

// Audit rules: CIS 1.1.x, the kernel audit watches on Docker's files.
func init() {
	a := func(id, cis string, sev Severity, title, fix string) Rule {
		return Rule{ID: id, CIS: cis, Kind: KindAudit, Severity: sev, Title: title, Remediation: fix}
	}
	register(
		a("audit.watch_missing", "1.1", Medium, "A Docker file is not covered by a kernel audit watch",
			"Add the watch: auditctl -w <path> -p wa -k <key> (and persist it in /etc/audit/rules.d)."),
		a("audit.daemon_unaudited", "1.1", High, "dockerd started before audit was enabled and is not audited",
			"Boot with audit=1 on the kernel command line, or restart docker after audit is enabled."),
	)
}
