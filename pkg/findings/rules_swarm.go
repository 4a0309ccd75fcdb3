package findings

// Swarm rules: CIS 5.1 and section 7, judged by the containers source from
// the Engine API (GET /info, /swarm, /networks) while this engine
// is in a swarm. The subjects are the swarm itself and its networks.
func init() {
	s := ruleOf(KindDaemon, "containers")
	register(
		s("swarm.active", "5.1", Info, "Swarm mode is enabled",
			"Leave the swarm on hosts that do not need it (docker swarm leave), or exempt this finding with the reason it is needed."),
		s("swarm.managers", "7.1", Low, "The swarm has an even or excessive number of managers",
			"Keep an odd number of managers, no more than needed: docker node demote <node>."),
		s("swarm.listen_all_interfaces", "7.2", Medium, "The swarm manager listens on or advertises every interface",
			"Re-create the swarm bound to one address: docker swarm init --listen-addr <ip>:2377 --advertise-addr <ip>."),
		s("swarm.overlay_unencrypted", "7.3", Medium, "A swarm overlay network is not encrypted",
			"Recreate the network with --opt encrypted (docker network create -d overlay --opt encrypted ...)."),
		s("swarm.autolock_off", "7.5", Low, "The swarm managers are not auto-locked",
			"Turn auto-lock on: docker swarm update --autolock=true, and keep the unlock key safe."),
	)
}
