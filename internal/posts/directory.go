package posts

import (
	"context"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// RefreshStore finds the open posts a directory change may touch
// (*store.Store).
type RefreshStore interface {
	PostsToRefresh(ctx context.Context, orgID string, sc store.RefreshScope, limit int) ([]string, error)
}

// maxRefresh bounds the posts one directory change signals.
const maxRefresh = 10000

// DirectoryChanged tells every open post the change may touch to re-resolve
// its open step (signal directory_changed, SPEC §2 Member): the posts come
// from the mirror, and each workflow reads the directory itself, so the
// signal carries nothing to trust. Called after the change committed; the
// gate (AuthorizeDecision) already reads the new directory, so a signal that
// is lost (the API stops midway) only leaves a stale list of who is awaited
// until the next change or step. It returns how many posts were told.
func (s *Service) DirectoryChanged(ctx context.Context, orgID string, sc store.RefreshScope, reason string) int {
	rs, ok := s.Store.(RefreshStore)
	if !ok {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	log := s.Logger.With("org", orgID, "reason", reason)
	ids, err := rs.PostsToRefresh(ctx, orgID, sc, maxRefresh)
	if err != nil {
		log.Error("find posts to re-resolve after a directory change", "error", err)
		return 0
	}
	if len(ids) == maxRefresh {
		log.Warn("directory change touches more open posts than one pass signals", "max", maxRefresh)
	}
	n := 0
	for _, id := range ids {
		if err := s.Workflows.Signal(ctx, id, cs.SignalDirectoryChanged, cs.DirectoryChangedSignal{Reason: reason}); err != nil {
			log.Warn("signal directory change", "post_id", id, "workflow_id", cs.WorkflowID(id), "error", err)
			continue
		}
		n++
	}
	return n
}
