package containers

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
)

// imageScopePrefix marks the sink scopes of images.
const imageScopePrefix = "image/"

func imageScope(id string) string { return imageScopePrefix + id }

// JudgeImage returns the findings for one local image (CIS 4.6, 4.7, 4.9),
// from its inspect and its history. Like Judge it is pure.
func JudgeImage(img image.InspectResponse, history []image.HistoryResponseItem) []findings.Finding {
	subj := findings.ImageSubject(img.ID, img.RepoTags)
	var out []findings.Finding
	switch hc := imageHealthcheck(img); {
	case len(hc) == 0:
		out = append(out, findings.New("image.no_healthcheck", subj, "image "+subj.Name+" has no HEALTHCHECK instruction"))
	case hc[0] == "NONE":
		out = append(out, findings.New("image.no_healthcheck", subj, "image "+subj.Name+" disables its health check (HEALTHCHECK NONE)"))
	}
	var alone, adds []string
	for _, h := range history {
		instr, args := historyInstruction(h.CreatedBy)
		switch instr {
		case "RUN":
			if updatesAlone(args) {
				alone = append(alone, oneLine(args))
			}
		case "ADD":
			adds = append(adds, oneLine(args))
		}
	}
	if len(alone) > 0 {
		out = append(out, findings.New("image.update_alone", subj,
			"image "+subj.Name+" refreshes a package index in a RUN that installs nothing: "+truncate(alone[0], 200)).
			With("instructions", truncate(strings.Join(alone, " | "), 1000)))
	}
	if len(adds) > 0 {
		out = append(out, findings.New("image.add_instruction", subj,
			fmt.Sprintf("image %s was built with %d ADD instruction(s): %s", subj.Name, len(adds), truncate(adds[0], 200))).
			With("instructions", truncate(strings.Join(adds, " | "), 1000)))
	}
	return out
}

func imageHealthcheck(img image.InspectResponse) []string {
	if img.Config == nil || img.Config.Healthcheck == nil {
		return nil
	}
	return img.Config.Healthcheck.Test
}

// historyInstruction reads the Dockerfile instruction of a history entry,
// as the classic builder ("/bin/sh -c #(nop)  ADD file:… in /", a plain
// "/bin/sh -c …" for RUN) and BuildKit ("ADD a /b # buildkit",
// "RUN /bin/sh -c … # buildkit", "|1 ARG=v /bin/sh -c …") record it.
func historyInstruction(createdBy string) (instr, args string) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(createdBy), "# buildkit"))
	if rest, ok := strings.CutPrefix(s, "/bin/sh -c #(nop)"); ok {
		s = strings.TrimSpace(rest)
	} else if rest, ok := strings.CutPrefix(s, "/bin/sh -c "); ok {
		return "RUN", rest
	} else if strings.HasPrefix(s, "|") {
		return "RUN", s // BuildKit RUN with build arguments
	}
	word, rest, _ := strings.Cut(s, " ")
	if word != "" && strings.ToUpper(word) == word && strings.IndexFunc(word, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0 {
		return word, strings.TrimSpace(rest)
	}
	return "RUN", s
}

// packageCommands classifies a package tool's subcommands: refresh only
// downloads the index; change installs or upgrades packages.
var packageCommands = map[string]struct{ refresh, change []string }{
	"apt-get":  {[]string{"update"}, []string{"install", "upgrade", "dist-upgrade", "full-upgrade"}},
	"apt":      {[]string{"update"}, []string{"install", "upgrade", "dist-upgrade", "full-upgrade"}},
	"apk":      {[]string{"update"}, []string{"add", "upgrade"}},
	"yum":      {[]string{"makecache"}, []string{"install", "update", "upgrade"}},
	"dnf":      {[]string{"makecache"}, []string{"install", "update", "upgrade"}},
	"microdnf": {[]string{"makecache"}, []string{"install", "update", "upgrade"}},
	"zypper":   {[]string{"refresh", "ref"}, []string{"install", "in", "update", "up"}},
}

// updatesAlone reports whether a RUN command refreshes a package index and
// installs nothing in the same instruction (CIS 4.7): the refreshed index
// is then cached in its own layer, and later installs use a stale one.
func updatesAlone(cmd string) bool {
	refresh, change := false, false
	for _, simple := range strings.FieldsFunc(cmd, func(r rune) bool { return strings.ContainsRune("&|;\n()", r) }) {
		words := strings.Fields(simple)
		for len(words) > 0 && (strings.Contains(words[0], "=") || words[0] == "sudo" || words[0] == "exec") {
			words = words[1:] // VAR=value prefixes and wrappers
		}
		if len(words) == 0 {
			continue
		}
		pc, ok := packageCommands[path.Base(words[0])]
		if !ok {
			continue
		}
		for _, w := range words[1:] {
			if strings.HasPrefix(w, "-") {
				continue
			}
			refresh = refresh || containsString(pc.refresh, w)
			change = change || containsString(pc.change, w)
			break // the first non-option word is the subcommand
		}
	}
	return refresh && !change
}

// inventoryImages judges every local image, used or not, and drops the
// findings of images that are gone.
func (s *Source) inventoryImages(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	list, err := s.eng.ImageList(lctx, client.ImageListOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	present := make(map[string]string, len(list.Items))
	var mu sync.Mutex
	var lost error
	forEach(s.cfg.InventoryConcurrency, len(list.Items), func(i int) {
		id := list.Items[i].ID
		_, name, err := s.judgeImage(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && connectionLost(err):
			lost = err
		case err != nil:
			s.log.Warn("could not judge image; it keeps its last judgement", zap.String("image", id), zap.Error(err))
			present[id] = s.imageName(id)
		case name != "":
			present[id] = name
		}
	})
	if lost != nil {
		return fmt.Errorf("image inventory: %w", lost)
	}
	s.mu.Lock()
	s.images, s.imagesTaken = present, true
	s.mu.Unlock()
	// Each present image was Set as it was judged: resolve the others.
	keep := make([]string, 0, len(present))
	for id := range present {
		keep = append(keep, imageScope(id))
	}
	s.sink.Sync(imageScopePrefix, nil, keep...)
	return nil
}

// judgeImage inspects one image (by ID or reference) and replaces its
// findings; it returns the image's ID and name, or "" when the image is
// gone (and forgotten).
func (s *Source) judgeImage(ctx context.Context, ref string) (id, name string, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	img, err := s.eng.ImageInspect(ctx, ref)
	if err == nil {
		var hist client.ImageHistoryResult
		if hist, err = s.eng.ImageHistory(ctx, img.ID); err == nil {
			s.sink.Set(imageScope(img.ID), JudgeImage(img.InspectResponse, hist.Items))
			return img.ID, findings.ImageSubject(img.ID, img.RepoTags).Name, nil
		}
	}
	if cerrdefs.IsNotFound(err) {
		s.forgetImage(ref)
		return "", "", nil
	}
	return "", "", fmt.Errorf("inspect image %s: %w", ref, err)
}

func (s *Source) imageName(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.images[id]
}

func (s *Source) forgetImage(id string) {
	s.mu.Lock()
	delete(s.images, id)
	s.mu.Unlock()
	s.sink.Set(imageScope(id), nil)
}

// imageEvent re-judges an image that was pulled, loaded, imported, built,
// tagged or untagged, and forgets one that was deleted.
func (s *Source) imageEvent(ctx context.Context, action, id string) error {
	switch action {
	case "delete":
		s.forgetImage(id)
	case "pull", "load", "import", "tag", "untag", "create", "commit":
		id, name, err := s.judgeImage(ctx, id)
		if err != nil && connectionLost(err) {
			return err
		}
		if err != nil {
			s.log.Warn("could not judge image after event; it keeps its last judgement", zap.String("image", id), zap.Error(err))
			return nil
		}
		if name != "" {
			s.mu.Lock()
			if s.images == nil {
				s.images = map[string]string{}
			}
			s.images[id] = name
			s.mu.Unlock()
		}
	}
	return nil
}

// imageCountsLocked returns the images known and those no known container
// was created from. Caller holds mu.
func (s *Source) imageCountsLocked() (total, unused int) {
	used := make(map[string]bool, len(s.known))
	for _, c := range s.known {
		used[c.imageID] = true
	}
	for id := range s.images {
		if !used[id] {
			unused++
		}
	}
	return len(s.images), unused
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// forEach runs fn(0..n-1) on at most workers goroutines.
func forEach(workers, n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
