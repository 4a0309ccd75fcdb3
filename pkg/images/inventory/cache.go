package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Cache keeps inventories on disk, one JSON file per image ID, so a restart
// extracts no image already extracted. An image ID is a content digest, so
// an entry never goes stale; it is deleted when its image goes.
type Cache struct{ Dir string }

var imageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (c Cache) path(id string) (string, error) {
	if !imageID.MatchString(id) {
		return "", fmt.Errorf("image ID %q is not sha256:<64 hex>", id)
	}
	return filepath.Join(c.Dir, strings.Replace(id, ":", "-", 1)+".json"), nil
}

// Load returns the cached inventory of image id; ok is false when there is
// none, or when the file is of another format or does not decode (it is
// then extracted again and overwritten).
func (c Cache) Load(id string) (inv Inventory, ok bool, err error) {
	p, err := c.path(id)
	if err != nil {
		return Inventory{}, false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Inventory{}, false, nil
	}
	if err != nil {
		return Inventory{}, false, fmt.Errorf("reading the cached inventory: %w", err)
	}
	if json.Unmarshal(data, &inv) != nil || inv.Format != Format || inv.ID != id {
		return Inventory{}, false, nil
	}
	return inv, true, nil
}

// Store writes inv atomically.
func (c Cache) Store(inv Inventory) error {
	p, err := c.path(inv.ID)
	if err != nil {
		return err
	}
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("creating the inventory cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.Dir, ".inventory-*")
	if err != nil {
		return fmt.Errorf("caching the inventory of %s: %w", inv.ID, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("caching the inventory of %s: %w", inv.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("caching the inventory of %s: %w", inv.ID, err)
	}
	return os.Rename(tmp.Name(), p)
}

// Delete removes the inventory of an image that is gone.
func (c Cache) Delete(id string) error {
	p, err := c.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("collecting the cached inventory of %s: %w", id, err)
	}
	return nil
}

// IDs lists the cached image IDs.
func (c Cache) IDs() ([]string, error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the inventory cache: %w", err)
	}
	var out []string
	for _, e := range entries {
		id := strings.Replace(strings.TrimSuffix(e.Name(), ".json"), "-", ":", 1)
		if strings.HasSuffix(e.Name(), ".json") && imageID.MatchString(id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}
