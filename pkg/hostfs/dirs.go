package hostfs

import "path"

// BinDirs are where Docker's programs are looked for, in the order of a
// root shell's PATH, then /opt/bin (CoreOS-style hosts). Debian puts
// dockerd and runc in /usr/sbin; static installs use /usr/local/bin.
var BinDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/opt/bin"}

// UnitDirs are systemd's system unit search path, most specific first, so
// that the unit systemd really loads is found whatever the distribution.
var UnitDirs = []string{
	"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/lib/systemd/system", "/usr/lib/systemd/system",
}

// UnitPaths lists where systemd may find the unit called name, in UnitDirs
// order.
func UnitPaths(name string) []string {
	out := make([]string, len(UnitDirs))
	for i, d := range UnitDirs {
		out[i] = path.Join(d, name)
	}
	return out
}

// FindProgram finds the program called name in BinDirs and returns the
// host path it really is (symlinks resolved), for the first directory that
// holds a regular file of that name.
func (r Root) FindProgram(name string) (string, bool) {
	for _, dir := range BinDirs {
		real, fi, err := r.Stat(path.Join(dir, name))
		if err == nil && fi.Mode().IsRegular() {
			return real, true
		}
	}
	return "", false
}
