package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/dockward/dockward/pkg/hostfs"
)

// errorReason classifies a filesystem error for the scan error counter.
func errorReason(err error) string {
	switch {
	case errors.Is(err, hostfs.ErrSymlinkLoop), errors.Is(err, syscall.ELOOP):
		return reasonSymlinkLoop
	case errors.Is(err, fs.ErrPermission):
		return reasonUnreadable
	default:
		return reasonStat
	}
}

// ownerOf returns the uid and gid of a stat result.
func ownerOf(fi fs.FileInfo) (uid, gid uint32, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("no ownership information for %s", fi.Name())
	}
	return st.Uid, st.Gid, nil
}

// unixMode is the 12-bit permission word (setuid, setgid, sticky and rwx),
// as chmod takes it.
func unixMode(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
