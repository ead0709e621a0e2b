package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

func (d *dir) media(orgID, by string) cs.Media {
	d.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	m, err := d.st.CreateMedia(d.ctx, store.StoredMedia{Media: cs.Media{ID: id, OrgID: orgID, ContentType: "image/png",
		Bytes: 10, Width: 1, Height: 1, SHA256: "ab"}, BlobKey: orgID + "/" + id, UploadedBy: by})
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// Media rows are the org's: another org's id reads as missing, attaching
// reports it, and only unattached uploads past their age are listed for the
// sweep.
func TestMediaRowsStayInTheirOrg(t *testing.T) {
	d := newDir(t)
	other, err := d.st.Bootstrap(d.ctx, "Rival", "owner@rival.test", "Rita")
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := d.media(d.org, d.owner.ID), d.media(other.Org.ID, other.Member.ID)
	if _, err := d.st.Media(d.ctx, d.org, theirs.ID); cs.ErrorCode(err) != cs.ENOTFOUND {
		t.Fatalf("another org's media: %v", err)
	}
	found, err := d.st.MediaByIDs(d.ctx, d.org, []string{mine.ID, theirs.ID, "not-an-id"})
	if err != nil || len(found) != 1 || found[mine.ID].ID != mine.ID {
		t.Fatalf("MediaByIDs: %v, %v", found, err)
	}
	missing, err := d.st.AttachMedia(d.ctx, d.org, []string{mine.ID, theirs.ID})
	if err != nil || len(missing) != 1 || missing[0] != theirs.ID {
		t.Fatalf("AttachMedia: missing %v, %v", missing, err)
	}
	stale, err := d.st.UnattachedMedia(d.ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(stale) != 1 || stale[0].ID != theirs.ID {
		t.Fatalf("unattached: %v, %v; want only the other org's (mine is attached)", stale, err)
	}
	if stale, _ := d.st.UnattachedMedia(d.ctx, time.Now().Add(-time.Hour), 10); len(stale) != 0 {
		t.Fatalf("uploads younger than the cut listed: %v", stale)
	}
	if ok, err := d.st.DeleteUnattachedMedia(d.ctx, mine.ID); ok || err != nil {
		t.Fatalf("deleting an attached upload: %v, %v", ok, err)
	}
}

// A submission's images are kept with the post, so the reconciler can
// start a post whose first start was lost, and the post shows them before
// its workflow answered. A post without images stores none.
func TestPostKeepsItsSubmittedMedia(t *testing.T) {
	d := newDir(t)
	acct := d.account("log")
	m := d.media(d.org, d.owner.ID)
	media := []cs.PostMedia{{ID: m.ID, Alt: "a cat", SHA256: m.SHA256}}
	p, _, err := d.st.CreatePost(d.ctx, store.NewPost{OrgID: d.org, AccountID: acct, AuthorID: d.owner.ID, Text: "hi",
		Media: media, Chain: cs.DefaultChain()})
	if err != nil {
		t.Fatal(err)
	}
	if p.ContentHash != cs.ContentHash("hi", nil, media...) || len(p.Media) != 1 || p.Media[0].Alt != "a cat" ||
		p.Media[0].URL != "/v1/orgs/"+d.org+"/media/"+m.ID {
		t.Fatalf("created post: hash %s media %+v", p.ContentHash, p.Media)
	}
	u, ok, err := d.st.UnstartedPostByID(d.ctx, p.ID)
	if err != nil || !ok || len(u.Media) != 1 || u.Media[0] != media[0] {
		t.Fatalf("unstarted post: %+v %v %v", u.Media, ok, err)
	}
	plain, _, err := d.st.CreatePost(d.ctx, store.NewPost{OrgID: d.org, AccountID: acct, AuthorID: d.owner.ID, Text: "hi", Chain: cs.DefaultChain()})
	if err != nil {
		t.Fatal(err)
	}
	if plain.ContentHash != cs.ContentHash("hi", nil) || len(plain.Media) != 0 || plain.Media == nil {
		t.Fatalf("plain post: hash %s media %#v", plain.ContentHash, plain.Media)
	}
}
