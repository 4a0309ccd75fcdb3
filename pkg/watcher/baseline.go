package watcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// baselineFile is the state file's name inside StateDir.
const baselineFile = "binaries.json"

// baseline is the state file: the first hash seen for each binary.
type baseline struct {
	Version  int                      `json:"version"`
	Binaries map[string]baselineEntry `json:"binaries"`
}

type baselineEntry struct {
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	Recorded time.Time `json:"recorded"`
}

func emptyBaseline() *baseline {
	return &baseline{Version: 1, Binaries: map[string]baselineEntry{}}
}

// baselineStore keeps the binary baseline in StateDir across restarts. It
// reads the state file once, at the first judgement.
type baselineStore struct {
	dir        string
	log        *zap.Logger
	countError func(reason string) // counts a state file problem (the store logs it)
	current    *baseline           // nil until loaded
}

// path is the state file.
func (st *baselineStore) path() string { return filepath.Join(st.dir, baselineFile) }

// get returns the baseline, reading the state file the first time. A
// missing file is an empty baseline; a corrupt one is set aside (never
// silently overwritten) and reported.
func (st *baselineStore) get() *baseline {
	if st.current == nil {
		st.current = st.load()
	}
	return st.current
}

func (st *baselineStore) load() *baseline {
	p := st.path()
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return emptyBaseline()
	}
	if err != nil {
		st.countError(reasonStateFile)
		st.log.Error("binary baseline state file unreadable; keeping a baseline in memory only", logPath(p), logErr(err))
		return emptyBaseline()
	}
	b := emptyBaseline()
	err = json.Unmarshal(data, b)
	if err == nil && b.Binaries == nil {
		b.Binaries = map[string]baselineEntry{}
	}
	if err != nil {
		st.countError(reasonStateFile)
		aside := p + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
		_ = os.Rename(p, aside)
		st.log.Error("binary baseline state file is corrupt; starting a new baseline",
			logPath(p), logErr(err), logString("moved_to", aside))
		return emptyBaseline()
	}
	return b
}

// save writes the state file atomically (write, fsync, rename).
func (st *baselineStore) save() error {
	if err := os.MkdirAll(st.dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory %s: %w", st.dir, err)
	}
	data, err := json.MarshalIndent(st.get(), "", "  ")
	if err != nil {
		return err
	}
	p := st.path()
	tmp, err := os.CreateTemp(st.dir, baselineFile+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
