package watcher

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/dockward/dockward/pkg/hostfs"
)

// hashed is a binary's digests, cached against its stat state so that an
// unchanged file is not read again.
type hashed struct {
	state          fileState
	sha256, md5sum string
}

// hashCache hashes binaries on the host, reading a file again only when
// its stat state changed.
type hashCache struct {
	root   hostfs.Root
	byPath map[string]hashed // by resolved host path
}

func newHashCache(root hostfs.Root) *hashCache {
	return &hashCache{root: root, byPath: map[string]hashed{}}
}

// hash returns the SHA-256 and MD5 of host path real (symlinks already
// resolved), from the cache when the file's stat state is unchanged.
func (c *hashCache) hash(real string) (hashed, error) {
	fi, err := os.Stat(c.root.Local(real))
	if err != nil {
		return hashed{}, err
	}
	st := stateOf(real, fi)
	if h, ok := c.byPath[real]; ok && h.state == st {
		return h, nil
	}
	f, err := os.Open(c.root.Local(real))
	if err != nil {
		return hashed{}, err
	}
	defer f.Close()
	sh, mh := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(sh, mh), f); err != nil {
		return hashed{}, fmt.Errorf("reading %s: %w", real, err)
	}
	h := hashed{state: st, sha256: hex.EncodeToString(sh.Sum(nil)), md5sum: hex.EncodeToString(mh.Sum(nil))}
	c.byPath[real] = h
	return h, nil
}
