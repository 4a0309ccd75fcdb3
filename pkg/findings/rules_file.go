package findings

// File rules: CIS section 3 (ownership and modes of Docker's files) and the
// integrity of Docker's binaries. A finding's CIS reference may name the
// exact 3.x check for its path; the rule's is the section.
func init() {
	f := ruleOf(KindFile, "host")
	register(
		f("file.owner", "3", Medium, "Docker file has the wrong owner",
			"chown to the expected owner (see the finding's remediation for the exact command)."),
		f("file.mode", "3", Medium, "Docker file is more permissive than allowed",
			"chmod to the expected mode (see the finding's remediation for the exact command)."),
		f("file.binary_changed", "1.1", High, "A Docker binary changed since its baseline",
			"Verify the change (package upgrade?) and reinstall the package if it was not expected."),
		f("file.binary_checksum_mismatch", "1.1", Critical, "A Docker binary differs from its package's recorded checksum",
			"Reinstall the package: apt-get install --reinstall <package> (or rpm -V / dnf reinstall)."),
	)
}
