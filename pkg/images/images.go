package images

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/images/inventory"
)

// imageState is one local image.
type imageState struct {
	id   string
	refs []string // repo:tag names, sorted
	size int64
	inv  *inventory.Inventory // nil until read
	// failure is why the image could not be read; it is not retried until
	// the rescan (an image over the size cap stays over it).
	failure *inventory.Error
}

// name is how findings and metrics name the image: its first tag, or its
// short ID when it has none.
func (im *imageState) name() string {
	if len(im.refs) > 0 {
		return im.refs[0]
	}
	return shortID(im.id)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// syncImages lists the local images: new ones are loaded from the cache or
// queued for extraction, gone ones forgotten and their cache collected.
func (s *Source) syncImages(ctx context.Context) error {
	list, err := s.eng.ImageList(ctx, client.ImageListOptions{All: false})
	if err != nil {
		return fmt.Errorf("listing images: %w", err)
	}
	seen := make(map[string]bool, len(list.Items))
	for _, it := range list.Items {
		seen[it.ID] = true
		im := s.images[it.ID]
		if im == nil {
			im = &imageState{id: it.ID}
			s.images[it.ID] = im
			s.load(im)
		} else if im.failure != nil && im.failure.Reason != inventory.ReasonTooLarge {
			im.failure = nil // the rescan retries a failed export
			s.queue(im.id)
		}
		im.refs, im.size = tags(it.RepoTags), it.Size
	}
	for id := range s.images {
		if !seen[id] {
			delete(s.images, id)
			s.dequeue(id)
		}
	}
	s.collectCache(seen)
	s.imagesListed = true
	return nil
}

// collectCache deletes cached inventories of images that are gone, also
// those that went while the agent was not running.
func (s *Source) collectCache(present map[string]bool) {
	ids, err := s.cache.IDs()
	if err != nil {
		s.log.Warn("listing the inventory cache", zap.Error(err))
		return
	}
	for _, id := range ids {
		if !present[id] {
			if err := s.cache.Delete(id); err != nil {
				s.log.Warn("collecting an inventory", zap.String("image_id", shortID(id)), zap.Error(err))
			}
		}
	}
}

func tags(repoTags []string) []string {
	var out []string
	for _, t := range repoTags {
		if t != "" && t != "<none>:<none>" {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// load takes the image's inventory from the cache, or queues it.
func (s *Source) load(im *imageState) {
	inv, ok, err := s.cache.Load(im.id)
	if err != nil {
		s.log.Warn("reading a cached inventory; extracting again", zap.String("image_id", shortID(im.id)), zap.Error(err))
	}
	if ok {
		s.intern(&inv)
		im.inv = &inv
		return
	}
	s.queue(im.id)
}

// intern makes the inventory's strings the source's shared copies: a
// thousand images name the same few thousand packages and versions, and
// each decoded inventory would otherwise hold its own.
func (s *Source) intern(inv *inventory.Inventory) {
	one := func(p *string) {
		if *p == "" {
			return
		}
		if v, ok := s.strings[*p]; ok {
			*p = v
			return
		}
		s.strings[*p] = *p
	}
	one(&inv.OS)
	// A decoded slice keeps the spare capacity of its growth; hold exactly
	// what is there.
	inv.Packages = append(make([]inventory.Package, 0, len(inv.Packages)), inv.Packages...)
	for i := range inv.Packages {
		p := &inv.Packages[i]
		one(&p.Name)
		one(&p.Version)
		one(&p.Source)
		one(&p.SourceVersion)
		one(&p.Ecosystem)
	}
}

func (s *Source) queue(id string) {
	for _, p := range s.pending {
		if p == id {
			return
		}
	}
	s.pending = append(s.pending, id)
}

func (s *Source) dequeue(id string) {
	for i, p := range s.pending {
		if p == id {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
	}
}

// extractNext reads the next queued image through the Engine's export.
func (s *Source) extractNext(ctx context.Context) {
	if len(s.pending) == 0 {
		return
	}
	id := s.pending[0]
	s.pending = s.pending[1:]
	im := s.images[id]
	if im == nil {
		return
	}
	start := s.now()
	inv, err := s.exportAndExtract(ctx, im)
	s.m.extractDuration.Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		var ie *inventory.Error
		if !errors.As(err, &ie) {
			ie = &inventory.Error{Reason: inventory.ReasonExtract, Err: err}
		}
		im.failure = ie
		s.m.scanErrors.WithLabelValues(ie.Reason).Inc()
		s.log.Warn("image not scanned", zap.String("image", im.name()), zap.String("image_id", shortID(id)),
			zap.String("reason", ie.Reason), zap.Error(ie.Err))
		return
	}
	for _, sk := range inv.Skipped {
		s.m.scanErrors.WithLabelValues(sk.Reason).Inc()
	}
	s.intern(&inv)
	im.inv, im.failure = &inv, nil
	if err := s.cache.Store(inv); err != nil {
		s.log.Warn("caching an inventory; it will be extracted again after a restart", zap.Error(err))
	}
	s.log.Debug("image inventoried", zap.String("image", im.name()), zap.Int("packages", len(inv.Packages)),
		zap.Duration("took", time.Since(start)))
}

// exportAndExtract streams one image's export into the extractor. The size
// from the image list is checked first, so an image over the cap is not
// exported at all; the extractor enforces the cap on the stream as well.
func (s *Source) exportAndExtract(ctx context.Context, im *imageState) (inventory.Inventory, error) {
	if im.size > int64(s.cfg.MaxImageSize) {
		return inventory.Inventory{}, &inventory.Error{Reason: inventory.ReasonTooLarge,
			Err: fmt.Errorf("%d bytes is over images.max_image_size (%d)", im.size, s.cfg.MaxImageSize)}
	}
	s.m.exports.Inc()
	rc, err := s.eng.ImageSave(ctx, []string{im.id})
	if err != nil {
		return inventory.Inventory{}, &inventory.Error{Reason: inventory.ReasonExport, Err: err}
	}
	defer rc.Close()
	return s.extract.FromExport(ctx, im.id, rc)
}
