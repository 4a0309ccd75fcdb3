package findings

// Image rules: CIS section 4, judged for every local image (used by a
// container or not) from its inspect and its history.
func init() {
	i := ruleOf(KindImage, "containers")
	register(
		i("image.no_healthcheck", "4.6", Low, "The image has no HEALTHCHECK instruction",
			"Add a HEALTHCHECK instruction to the Dockerfile and rebuild the image."),
		i("image.update_alone", "4.7", Info, "The image ran a package index update on its own",
			"Run the update and the install in one RUN instruction (apt-get update && apt-get install ...), with pinned versions."),
		i("image.add_instruction", "4.9", Info, "The image was built with ADD instead of COPY",
			"Use COPY for local files; fetch remote files with a verified download in a RUN instruction."),
	)
}
