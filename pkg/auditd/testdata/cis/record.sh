#!/bin/bash
# record.sh FORMAT OUTDIR records the real audit records of raw.log.gz
# (FORMAT RAW), enriched.log.gz (ENRICHED) and netlink.txt.gz (the kernel's
# records of the RAW run). It runs Debian's auditd with a private config
# and log, loads the CIS Docker Benchmark watches written as the benchmark
# writes them (no -p), joins the audit multicast group with recorder.go, and
# makes real events of every access class, routine Docker use (the CLI and a
# container start) and every kind of tampering with audit itself, run with
# login uid 1000. It leaves OUTDIR/audit.log and OUTDIR/netlink.txt and puts
# the kernel's audit rules and settings back. Run it as root while nothing
# else uses kernel audit: it removes every rule and disables audit for a
# moment.
set -u
FORMAT=$1
OUT=$(realpath -m "$2")
here=$(dirname "$(realpath "$0")")
[ "$(id -u)" = 0 ] || { echo "record.sh: run as root" >&2; exit 2; }
# Records carry the working directory: record from a neutral one.
cd /tmp
mkdir -p "$OUT"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$here" && go build -o "$dir/recorder" .) || exit 1
RECORD=$dir/recorder
orig_status=$(auditctl -s)
orig_rules=$(auditctl -l)
field() { echo "$orig_status" | awk -v k="$1" '$1==k {print $2}'; }
orig_enabled=$(field enabled); orig_failure=$(field failure); orig_backlog=$(field backlog_limit)
orig_rate=$(field rate_limit); orig_wait=$(field backlog_wait_time)
mkdir "$dir/plugins"
cat > "$dir/auditd.conf" <<CONF
local_events = yes
write_logs = yes
log_file = $dir/audit.log
log_format = $FORMAT
flush = INCREMENTAL_ASYNC
freq = 1
num_logs = 1
name_format = NONE
max_log_file = 100
max_log_file_action = IGNORE
space_left = 75
space_left_action = IGNORE
admin_space_left = 50
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
plugin_dir = $dir/plugins
q_depth = 2000
overflow_action = IGNORE
end_of_event_timeout = 2
CONF
"$RECORD" "$OUT/netlink.txt" > "$dir/record.out" &
recpid=$!
while ! grep -q ready "$dir/record.out" 2>/dev/null; do sleep 0.05; done
start_auditd() {
	auditd -n -c "$dir" >> "$dir/auditd.out" 2>&1 &
	adpid=$!
	while ! auditctl -s | grep -q "^pid $adpid\$"; do sleep 0.05; done
}
start_auditd
auditctl -b 8192 >/dev/null
# CIS Docker Benchmark 1.1.x watches as the benchmark writes them: no -p.
# /usr/local/bin/docker (the CLI here) is keyed docker_bin, as some rule sets
# do, which is dockward's key for dockerd.
CIS_RULES="-w /usr/sbin/dockerd -k docker
-w /run/containerd -k docker
-w /var/lib/docker -k docker
-w /etc/docker -k docker
-w /lib/systemd/system/docker.service -k docker
-w /lib/systemd/system/docker.socket -k docker
-w /etc/default/docker -k docker
-w /etc/docker/daemon.json -k docker
-w /etc/containerd/config.toml -k docker
-w /usr/bin/containerd -k docker
-w /usr/bin/containerd-shim-runc-v2 -k docker
-w /usr/sbin/runc -k docker
-w /usr/local/bin/docker -k docker_bin"
load_rules() { echo "$CIS_RULES" | while read -r r; do auditctl $r >/dev/null; done; }
load_rules
sleep 0.3
B=/etc/docker/dockward-rec-$$
# Actions run with login uid 1000, so the records carry an auid that is
# not the recorder's own.
as_user() { sh -c 'echo 1000 > /proc/self/loginuid && exec "$@"' sh "$@"; }
py() { as_user python3 -c "$1"; }
# write
as_user touch "$B-touch"
as_user sh -c "echo hi > $B-touch"
py "import os; os.close(os.open('$B-touch', os.O_RDWR))"
as_user sh -c "echo more >> $B-touch"
as_user truncate -s 0 "$B-touch"
py "import os; os.truncate('$B-touch', 0)"
py "import ctypes; ctypes.CDLL(None).syscall(85, b'$B-creat', 0o644)"
as_user mv "$B-touch" "$B-moved"
py "import os; os.rename('$B-moved', '$B-renamed')"
echo x > /tmp/dockward-rec-$$-outside
as_user mv /tmp/dockward-rec-$$-outside "$B-from-tmp"
as_user ln "$B-renamed" "$B-hard"
as_user ln -s "$B-renamed" "$B-sym"
as_user rm "$B-hard"
py "import os; os.unlink('$B-creat')"
as_user mkdir "$B-dir"
as_user rmdir "$B-dir"
as_user mkfifo "$B-fifo"
as_user rm "$B-fifo" "$B-from-tmp"
(cd /etc/docker && as_user touch "dockward-rec-$$-relative")
py "import ctypes, os
class How(ctypes.Structure): _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]
libc = ctypes.CDLL(None, use_errno=True)
for path, flags, mode in (('$B-openat2', os.O_WRONLY | os.O_CREAT, 0o644), ('/etc/docker/daemon.json', os.O_RDONLY, 0)):
    how = How(flags, mode, 0)
    fd = libc.syscall(437, -100, path.encode(), ctypes.byref(how), ctypes.c_size_t(24))
    os.close(fd)"
as_user mkdir "$B-tree"
as_user touch "$B-tree/leaf"
as_user rm -r "$B-tree"
# attr
as_user chmod 600 "$B-renamed"
as_user chown root:root "$B-renamed"
py "import os; os.setxattr('$B-renamed', 'user.dockward', b'1')"
py "import os; os.removexattr('$B-renamed', 'user.dockward')"
as_user touch -m -d '2020-01-01' "$B-renamed"
# read
as_user cat /etc/docker/daemon.json > /dev/null
as_user stat /etc/docker/daemon.json > /dev/null
as_user ls -la /var/lib/docker > /dev/null
py "import os; os.getxattr('/etc/docker/daemon.json', 'user.none') if False else os.listxattr('/etc/docker/daemon.json')"
py "import os
try: os.getxattr('/etc/docker/daemon.json', 'user.dockward')
except OSError: pass"
as_user readlink "$B-sym" > /dev/null
as_user test -r /etc/docker/daemon.json
as_user cat /lib/systemd/system/docker.service /etc/default/docker > /dev/null
# A rule without a permission filter reports every syscall on its path,
# stat, access and utime calls included (-p rwxa leaves those out).
auditctl -a always,exit -F arch=b64 -F dir=/etc/docker -k docker_any
as_user stat /etc/docker/daemon.json > /dev/null
as_user test -r /etc/docker/daemon.json
py "import os; os.stat('/etc/docker/daemon.json'); os.lstat('$B-sym')"
py "import os; os.utime('$B-renamed', (0, 0))"
auditctl -d always,exit -F arch=b64 -F dir=/etc/docker -k docker_any
# exec
as_user /usr/local/bin/docker version > /dev/null 2>&1
as_user /usr/sbin/runc --version > /dev/null
py "import os; fd = os.open('/usr/sbin/runc', os.O_RDONLY); os.execve(fd, ['runc', '--version'], {})" > /dev/null
# routine Docker use: the CLI, and a container start (dockerd, containerd,
# the shim and runc under /var/lib/docker and /run/containerd)
as_user docker ps > /dev/null
as_user docker info > /dev/null 2>&1
as_user docker run --rm --network none dockward-test-busybox:latest true
as_user rm -f "$B-renamed" "$B-sym" "$B-openat2" "/etc/docker/dockward-rec-$$-relative"
sleep 0.5
# tampering with audit itself
as_user auditctl -W /etc/docker -k docker > /dev/null
auditctl -w /etc/docker -k docker
as_user auditctl -b 100 > /dev/null
as_user auditctl -b 8192 > /dev/null
as_user auditctl --backlog_wait_time 0 > /dev/null
as_user auditctl --backlog_wait_time "$orig_wait" > /dev/null
as_user auditctl -f 0 > /dev/null
as_user auditctl -f "$orig_failure" > /dev/null
as_user auditctl -r 100 > /dev/null
as_user auditctl -r "$orig_rate" > /dev/null
as_user auditctl -e 0 > /dev/null
as_user auditctl -e 1 > /dev/null
as_user auditctl -D > /dev/null
load_rules
sleep 0.3
as_user kill -HUP "$adpid"
sleep 0.5
as_user kill -TERM "$adpid"
wait "$adpid"
sleep 0.3
start_auditd
sleep 0.3
kill -KILL "$adpid"
wait "$adpid" 2>/dev/null
sleep 1
auditctl -D >/dev/null
kill -TERM "$recpid"
wait "$recpid"
# restore
auditctl -f "$orig_failure" >/dev/null; auditctl -b "$orig_backlog" >/dev/null
auditctl -r "$orig_rate" >/dev/null; auditctl --backlog_wait_time "$orig_wait" >/dev/null
auditctl -e "$orig_enabled" >/dev/null
[ "$orig_rules" = "No rules" ] || echo "$orig_rules" | while read -r r; do auditctl $r; done
cp "$dir/audit.log" "$OUT/audit.log"
cp "$dir/auditd.out" "$OUT/auditd.out"
after_status=$(auditctl -s | grep -v -e '^backlog ' -e '^lost ' -e '^backlog_wait_time_actual' -e '^pid ')
before=$(echo "$orig_status" | grep -v -e '^backlog ' -e '^lost ' -e '^backlog_wait_time_actual' -e '^pid ')
[ "$after_status" = "$before" ] || { echo "status not restored:"; diff <(echo "$before") <(echo "$after_status"); }
[ "$(auditctl -l)" = "$orig_rules" ] || echo "rules not restored"
ls -la /etc/docker
