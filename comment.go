package countersign

import "time"

// EventComment is the post event of a comment (SPEC §2 "Comment"): a note on
// a post, written by its author, an editor or above on the account, or anyone
// eligible for one of its steps. Its Detail is the text.
const EventComment = "comment"

// MaxCommentRunes bounds a comment's text, in characters.
const MaxCommentRunes = 4000

// Comment is a note on a post, as the API shows it.
type Comment struct {
	ID       string `json:"id"`
	PostID   string `json:"post_id"`
	AuthorID string `json:"author_id"`
	Text     string `json:"text"`
	// Revision is the revision of the post the comment was written on.
	Revision int `json:"revision"`
	// Source is api, or slack for a rejection's reason given in Slack's
	// reject form.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}
