package images

import (
	"fmt"

	"github.com/dockward/dockward/pkg/findings"
)

// vulnChecks are the checks the source's rules judge (4.4).
var vulnChecks = findings.ChecksJudgedBy(func(r findings.Rule) bool { return r.Source == Name })

// observe says, at a judgement, whether the source could judge its checks:
// not while the images or the running containers have never been listed
// (Docker not answering since the start), nor while local images wait to
// be read, since an image not read yet has no finding. nil: judged.
func (s *Source) observe() map[string]findings.Observation {
	unread := 0
	for _, im := range s.images {
		if im.inv == nil && im.failure == nil {
			unread++
		}
	}
	why := ""
	switch {
	case !s.imagesListed:
		why = "the local images have not been listed yet (the Docker Engine API has not answered)"
	case s.cfg.Containers && !s.containersListed:
		why = "the running containers have not been listed yet (the Docker Engine API has not answered)"
	case unread > 0:
		why = fmt.Sprintf("%d of %d local images have not been read yet; each is judged once read", unread, len(s.images))
	default:
		return nil
	}
	out := map[string]findings.Observation{}
	for _, id := range vulnChecks {
		out[id] = findings.Observation{Status: findings.StatusManual, Note: "not judged: " + why}
	}
	return out
}

// Observations are the compliance report's observations of the last
// judgement (see observe). Safe to call from any goroutine.
func (s *Source) Observations() map[string]findings.Observation {
	if o := s.observed.Load(); o != nil {
		return *o
	}
	out := map[string]findings.Observation{}
	for _, id := range vulnChecks {
		out[id] = findings.Observation{Status: findings.StatusManual, Note: "not judged: the source has not judged yet"}
	}
	return out
}
