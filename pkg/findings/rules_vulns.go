package findings

// Vulnerability rules: known vulnerabilities of the OS packages in local
// images and running containers (CIS 4.4, "images are scanned and rebuilt
// to include security patches"), and the health of the OSV data they are
// judged with. The images source judges them all.
func init() {
	i, c, f := ruleOf(KindImage, "images"), ruleOf(KindContainer, "images"), ruleOf(KindFile, "images")
	register(
		i("image.vulnerable", "4.4", High, "An image has OS packages with known vulnerabilities",
			"Rebuild the image on an updated base (or run the distribution's upgrade in it) and redeploy its containers; the finding lists each CVE with its fixed version."),
		c("container.package_drift", "4.4", Medium, "A running container's packages differ from its image's",
			"Do not install or upgrade packages in running containers: rebuild the image with the change and recreate the container from it."),
		i("vulns.scan_skipped", "4.4", Medium, "An image could not be scanned for vulnerabilities, or only in part",
			"See the finding's reason: raise images.max_image_size or images.max_database_size, or repair or remove the image."),
		f("vulns.db_missing", "4.4", High, "No OSV vulnerability data for an ecosystem in use",
			"Let the agent reach vulns.db.url (or a mirror), or with vulns.db.offline drop <Ecosystem>/all.zip from OSV's bucket into vulns.db.dir."),
		f("vulns.db_stale", "4.4", Medium, "The OSV vulnerability data of an ecosystem is out of date",
			"Check the agent's update errors (dockward_vulns_db_update_errors_total) and its access to vulns.db.url, or refresh the zip in vulns.db.dir."),
	)
}
