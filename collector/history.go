package collector

import (
	"sync"
	"sync/atomic"
)

// History keeps the most recent probes, and separately the most recent
// failed ones, so that a burst of successes does not push out the failure
// an operator came to look at.
type History struct {
	mu     sync.Mutex
	limit  int
	lastID atomic.Int64 // ids given so far
	recent []*Result    // oldest first
	failed []*Result    // oldest first
}

// NewHistory keeps up to limit probes in each list; 0 keeps none.
func NewHistory(limit int) *History {
	return &History{limit: limit}
}

// NewID returns the id of a probe about to start: ids are given before
// the probe runs, so that its log lines and its trace carry it. They count
// from 0, as blackbox_exporter's do.
func (h *History) NewID() int64 { return h.lastID.Add(1) - 1 }

// Add records a finished probe, giving it an id if it has none. What it
// keeps of a hostile target is cut (Result.bound): r must be done with.
func (h *History) Add(r *Result) {
	if !r.numbered {
		r.ID, r.numbered = h.NewID(), true
	}
	if h.limit <= 0 {
		return
	}
	r.bound()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recent = appendBounded(h.recent, r, h.limit)
	if !r.Success() {
		h.failed = appendBounded(h.failed, r, h.limit)
	}
}

func appendBounded(list []*Result, r *Result, limit int) []*Result {
	if len(list) >= limit {
		copy(list, list[len(list)-limit+1:])
		list = list[:limit-1]
	}
	return append(list, r)
}

// Get returns the probe with that id, if it is still kept.
func (h *History) Get(id int64) (*Result, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, list := range [][]*Result{h.recent, h.failed} {
		for _, r := range list {
			if r.ID == id {
				return r, true
			}
		}
	}
	return nil, false
}

// Earliest returns the probe of target, with module unless module is "",
// that has been kept longest: blackbox_exporter's /logs?target=T answers
// with the first match in its history, oldest first, and the failures it
// keeps after they leave its recent list are older than all of that list.
func (h *History) Earliest(target, module string) (*Result, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var best *Result
	for _, list := range [][]*Result{h.recent, h.failed} {
		for _, r := range list {
			if r.isTarget(target) && (module == "" || r.Module.Name == module) && (best == nil || r.ID < best.ID) {
				best = r
			}
		}
	}
	return best, best != nil
}

// Lists returns copies of both lists, newest first.
func (h *History) Lists() (recent, failed []*Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return reversed(h.recent), reversed(h.failed)
}

func reversed(list []*Result) []*Result {
	out := make([]*Result, len(list))
	for i, r := range list {
		out[len(list)-1-i] = r
	}
	return out
}
