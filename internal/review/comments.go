package review

import (
	"context"

	cs "github.com/countersign/countersign"
)

// MaxComments is how many comments the page shows (the first ones).
const MaxComments = 100

// CommentStore is where the page reads a post's comments and their authors'
// names (*store.Store).
type CommentStore interface {
	Comments(ctx context.Context, orgID, postID string, p cs.Page) ([]cs.Comment, error)
	Member(ctx context.Context, orgID, memberID string) (cs.Member, error)
}

// StoreComments lists a post's comments with their authors' names, oldest
// first; an author no longer in the org shows as a former member.
func StoreComments(st CommentStore) Comments {
	return func(ctx context.Context, orgID, postID string) ([]Comment, error) {
		list, err := st.Comments(ctx, orgID, postID, cs.Page{Limit: MaxComments})
		if err != nil {
			return nil, err
		}
		names := map[string]string{}
		out := make([]Comment, 0, len(list))
		for _, c := range list {
			name, ok := names[c.AuthorID]
			if !ok {
				name = "A former member"
				if m, err := st.Member(ctx, orgID, c.AuthorID); err == nil && m.Name != "" {
					name = m.Name
				}
				names[c.AuthorID] = name
			}
			out = append(out, Comment{Author: name, Text: c.Text, Revision: c.Revision, At: c.CreatedAt})
		}
		return out, nil
	}
}
