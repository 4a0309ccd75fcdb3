package auditd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"
)

// JournalFile is the file, in the agent's state directory, where a unicast
// run records what it changed in the kernel while it runs. A run that ends
// cleanly restores the kernel and removes the file; a run that is killed
// (SIGKILL, `docker kill`, the OOM killer) cannot, and the next unicast
// start finds the file and undoes what that run left behind.
const JournalFile = "audit-restore.json"

// bootIDPath names the current boot: a journal of an earlier boot
// describes a kernel that no longer exists.
var bootIDPath = "/proc/sys/kernel/random/boot_id"

// journalState is the content of the journal file.
type journalState struct {
	BootID string `json:"boot_id"`
	PID    int    `json:"pid"`
	// Original are the settings before the run; Set are the values it set
	// (a setting it never touched is absent from both).
	Original kernelSettings `json:"original"`
	Set      kernelSettings `json:"set"`
	// Rules are the rules it added, in the kernel's wire format.
	Rules [][]byte `json:"rules"`
}

// kernelSettings are the audit status fields a unicast run may change.
type kernelSettings struct {
	Enabled         *uint32 `json:"enabled,omitempty"`
	BacklogLimit    *uint32 `json:"backlog_limit,omitempty"`
	BacklogWaitTime *uint32 `json:"backlog_wait_time,omitempty"`
}

// The settings journal.setting records.
var (
	enabledFlag     = func(k *kernelSettings) **uint32 { return &k.Enabled }
	backlogLimit    = func(k *kernelSettings) **uint32 { return &k.BacklogLimit }
	backlogWaitTime = func(k *kernelSettings) **uint32 { return &k.BacklogWaitTime }
)

// journal writes journalState to its file after every change (a missing
// state directory only costs the crash recovery, and is logged once).
type journal struct {
	path   string
	log    *zap.Logger
	state  journalState
	failed bool
}

func newJournal(stateDir string, log *zap.Logger) *journal {
	if stateDir == "" {
		return &journal{log: log}
	}
	return &journal{path: filepath.Join(stateDir, JournalFile), log: log}
}

// begin starts the record of a run, before it changes anything.
func (j *journal) begin() {
	boot, _ := os.ReadFile(bootIDPath)
	j.state = journalState{BootID: strings.TrimSpace(string(boot)), PID: os.Getpid()}
	j.save()
}

// setting records, before the change is made, that field will go from
// orig to set.
func (j *journal) setting(field func(*kernelSettings) **uint32, orig, set uint32) {
	*field(&j.state.Original), *field(&j.state.Set) = &orig, &set
	j.save()
}

// rule records a rule the run added.
func (j *journal) rule(wire []byte) {
	j.state.Rules = append(j.state.Rules, wire)
	j.save()
}

// done removes the file: the run restored everything it changed.
func (j *journal) done() {
	if j.path == "" {
		return
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("removing the audit restore journal", zap.String("path", j.path), zap.Error(err))
	}
}

func (j *journal) save() {
	if j.path == "" || j.failed {
		return
	}
	data, err := json.Marshal(j.state)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(j.path), 0o700)
	}
	if err == nil {
		tmp := j.path + ".tmp"
		if err = os.WriteFile(tmp, data, 0o600); err == nil {
			err = os.Rename(tmp, j.path)
		}
	}
	if err != nil {
		j.failed = true
		j.log.Warn("cannot record the kernel audit changes in the state directory: if dockward is killed, the next start cannot undo them",
			zap.String("path", j.path), zap.Error(err))
	}
}

// leftover reads the journal of an earlier run of this boot that did not
// restore the kernel, if there is one. A journal of an earlier boot is
// removed.
func (j *journal) leftover() (journalState, bool, error) {
	if j.path == "" {
		return journalState{}, false, nil
	}
	data, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return journalState{}, false, nil
	}
	if err != nil {
		return journalState{}, false, fmt.Errorf("reading the audit restore journal %s: %w", j.path, err)
	}
	var prev journalState
	if err := json.Unmarshal(data, &prev); err != nil {
		return journalState{}, false, fmt.Errorf("the audit restore journal %s is corrupt (remove it after checking auditctl -s and -l): %w", j.path, err)
	}
	boot, _ := os.ReadFile(bootIDPath)
	if prev.BootID != strings.TrimSpace(string(boot)) {
		j.log.Info("the audit restore journal is from an earlier boot; nothing to undo", zap.String("path", j.path))
		j.done()
		return journalState{}, false, nil
	}
	return prev, true, nil
}

// undoLeftover removes the rules an earlier, killed run added and puts back
// each setting it changed that still has the value it set (one someone has
// changed since is theirs now), then removes the journal.
func (j *journal) undoLeftover(ctl *libaudit.AuditClient, prev journalState) error {
	var errs []error
	removed := 0
	for _, wire := range prev.Rules {
		if err := ctl.DeleteRule(wire); err != nil {
			if !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing a rule the earlier run added: %w", err))
			}
			continue
		}
		removed++
	}
	st, err := ctl.GetStatus()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("reading the kernel's audit status: %w", err))...)
	}
	var restored []string
	put := func(name string, orig, set *uint32, now uint32, apply func(uint32) error) {
		if orig == nil || set == nil || now != *set || now == *orig {
			return
		}
		if err := apply(*orig); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s %d: %w", name, *orig, err))
			return
		}
		restored = append(restored, fmt.Sprintf("%s %d (it had set %d)", name, *orig, *set))
	}
	put("enabled", prev.Original.Enabled, prev.Set.Enabled, st.Enabled, func(v uint32) error { return ctl.SetEnabled(v != 0, libaudit.WaitForReply) })
	put("backlog_wait_time", prev.Original.BacklogWaitTime, prev.Set.BacklogWaitTime, st.BacklogWaitTime,
		func(v uint32) error { return ctl.SetBacklogWaitTime(int32(v), libaudit.WaitForReply) })
	put("backlog_limit", prev.Original.BacklogLimit, prev.Set.BacklogLimit, st.BacklogLimit,
		func(v uint32) error { return ctl.SetBacklogLimit(v, libaudit.WaitForReply) })
	j.log.Warn("an earlier run did not stop cleanly (killed?); undid the kernel audit changes it left behind",
		zap.Int("earlier_pid", prev.PID), zap.Int("rules_removed", removed), zap.Int("rules_recorded", len(prev.Rules)),
		zap.Strings("settings_restored", restored))
	if len(errs) == 0 {
		j.done()
	}
	return errors.Join(errs...)
}
