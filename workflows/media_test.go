package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/countersign/countersign"
)

// A post's images are part of its content: changing an alt text voids the
// approvals like a text change, the same images again change nothing, and
// the publisher gets the published revision's ids, alt texts and hashes.
func TestMediaAltTextChangeVoidsApprovalsAndReachesThePublisher(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 1), role()))
	cat := []countersign.PostMedia{{ID: "m1", Alt: "a cat", SHA256: "aa"}, {ID: "m2", Alt: "a dog", SHA256: "bb"}}
	in.Media = cat
	blackCat := []countersign.PostMedia{{ID: "m1", Alt: "a black cat", SHA256: "aa"}, {ID: "m2", Alt: "a dog", SHA256: "bb"}}

	f.approve(time.Minute, "ana", 1, 1)
	f.queryAt(90*time.Second, func(st countersign.PostState) {
		require.Equal(t, cat, st.Media)
		require.Equal(t, countersign.ContentHash("Hello world", nil, cat...), st.ContentHash)
		require.NotEqual(t, countersign.ContentHash("Hello world", nil), st.ContentHash)
	})
	// The same images and alt texts: nothing changes.
	f.signalAt(2*time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello world", Media: cat, By: "author"})
	f.queryAt(150*time.Second, func(st countersign.PostState) {
		require.Equal(t, 1, st.Revision)
		require.Equal(t, 2, st.CurrentStep)
	})
	// Only an alt text changes: a new revision, back to step 1.
	f.signalAt(3*time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello world", Media: blackCat, By: "author"})
	f.queryAt(4*time.Minute, func(st countersign.PostState) {
		require.Equal(t, 2, st.Revision)
		require.Equal(t, 1, st.CurrentStep)
		require.Empty(t, st.Steps[0].Approvals)
		require.Equal(t, countersign.ContentHash("Hello world", nil, blackCat...), st.ContentHash)
	})
	f.approve(5*time.Minute, "ana", 2, 1)
	f.approve(6*time.Minute, "cid", 2, 2)
	f.approve(7*time.Minute, "eve", 2, 3)

	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Len(t, f.publishes, 1)
	require.Equal(t, blackCat, f.publishes[0].Media)
	require.Equal(t, countersign.ContentHash("Hello world", nil, blackCat...), f.publishes[0].ContentHash)
	noop := f.eventsOf(countersign.EventSignalIgnored)
	require.Len(t, noop, 1)
	require.Equal(t, countersign.ReasonUnchanged, noop[0].Reason)
}

// Removing the images is a content change too; the publisher then gets none.
func TestMediaRemovedByAnEdit(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.Media = []countersign.PostMedia{{ID: "m1", Alt: "a cat", SHA256: "aa"}}
	f.signalAt(time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello world", By: "author"})
	f.approve(2*time.Minute, "ana", 2, 1)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, 2, st.Revision)
	require.Empty(t, f.publishes[0].Media)
	require.Equal(t, countersign.ContentHash("Hello world", nil), st.ContentHash)
}

// A post without images keeps exactly the hash it had before images
// existed (the recorded histories replay with it).
func TestContentHashWithoutMediaIsUnchanged(t *testing.T) {
	// SHA-256 of len("Hello world") as 8 bytes, the text, and 8 zero bytes
	// (no media URLs): the released encoding.
	require.Equal(t, "8a9e4e7890b7fa9652b44f0523272d666f17f37707cdde932ac288f4d20a30cc", countersign.ContentHash("Hello world", nil))
	require.Equal(t, countersign.ContentHash("Hello world", nil), countersign.ContentHash("Hello world", nil, nil...))
}
