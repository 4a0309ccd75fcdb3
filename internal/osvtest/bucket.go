package osvtest

import (
	"net/http"
	"sync"
)

// Bucket is a local stand-in for OSV's bucket (serve it with httptest): it
// serves one Debian zip with an ETag, answers a conditional GET for that
// ETag with 304 as GCS does, and records every request's headers.
type Bucket struct {
	mu      sync.Mutex
	body    []byte
	etag    string
	status  int // when set, answered instead
	headers []http.Header
}

func (b *Bucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.headers = append(b.headers, r.Header.Clone())
	if b.status != 0 {
		w.WriteHeader(b.status)
		return
	}
	if r.URL.Path != "/Debian/all.zip" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("If-None-Match") == b.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", b.etag)
	_, _ = w.Write(b.body)
}

// Serve makes the bucket serve body as the Debian zip, with etag.
func (b *Bucket) Serve(body []byte, etag string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.body, b.etag, b.status = body, etag, 0
}

// Fail makes the bucket answer every request with status.
func (b *Bucket) Fail(status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = status
}

// Requests is how many requests the bucket received.
func (b *Bucket) Requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.headers)
}

// Header is header name of the i-th request (negative: from the end).
func (b *Bucket) Header(i int, name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < 0 {
		i += len(b.headers)
	}
	return b.headers[i].Get(name)
}
