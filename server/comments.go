package server

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/posts"
)

// The comment endpoints translate to the posts service, which says who may
// discuss a post (posts.Service.MayDiscuss).

type commentRequest struct {
	Text string `json:"text"`
}

// addComment answers POST /v1/orgs/{org}/posts/{post}/comments {text}: 201
// with the comment.
func (s *Server) addComment(c *gin.Context) {
	id, ok := pathID(c, "post")
	if !ok {
		return
	}
	var req commentRequest
	if !bindJSON(c, &req) {
		return
	}
	me := currentMember(c)
	cm, err := s.posts.Comment(c, me, posts.NewCommentInput{PostID: id, Text: req.Text, Source: cs.SourceAPI})
	if err != nil {
		s.failPost(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/v1/orgs/%s/posts/%s/comments", me.OrgID, id))
	c.JSON(http.StatusCreated, cm)
}

// listComments answers GET /v1/orgs/{org}/posts/{post}/comments, oldest
// first, paginated.
func (s *Server) listComments(c *gin.Context) {
	id, ok := pathID(c, "post")
	if !ok {
		return
	}
	me := currentMember(c)
	listPage(s, c, func(p cs.Page) ([]cs.Comment, error) { return s.posts.ListComments(c, me, id, p) },
		func(cm cs.Comment) string { return cm.ID })
}
