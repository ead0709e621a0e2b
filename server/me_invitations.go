package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
)

// The invitee's side (SPEC §2 Invitation, like TweetDeck's Accounts panel):
// an existing user lists the pending invitations to their e-mail and answers
// them by id with their own API token. Another user's invitation is 404.

// myInvitations answers GET /v1/me/invitations.
func (s *Server) myInvitations(c *gin.Context) {
	user := currentUser(c)
	listPage(s, c, func(p cs.Page) ([]cs.Invitation, error) { return s.Store.MyInvitations(c, user, p) },
		func(inv cs.Invitation) string { return inv.ID })
}

// acceptMyInvitation answers POST /v1/me/invitations/{invitation}/accept.
func (s *Server) acceptMyInvitation(c *gin.Context) {
	id, ok := pathID(c, "invitation")
	if !ok {
		return
	}
	a, err := s.Store.AcceptMyInvitation(c, id, currentUser(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.Slack.LinkMemberLater(a.Member.OrgID, a.Member.ID, a.User.Email)
	c.JSON(http.StatusOK, a)
}

// declineMyInvitation answers POST /v1/me/invitations/{invitation}/decline.
func (s *Server) declineMyInvitation(c *gin.Context) {
	id, ok := pathID(c, "invitation")
	if !ok {
		return
	}
	if err := s.Store.DeclineMyInvitation(c, id, currentUser(c)); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "declined"})
}
