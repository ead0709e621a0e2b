package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media"
)

// uploadRoute is the one route whose body may exceed maxBodyBytes.
const uploadRoute = "/v1/orgs/:org/media"

// maxUploadBody is an upload's largest body: the image and the multipart
// framing around it.
const maxUploadBody = media.MaxBytes + 64<<10

// uploadMedia answers POST /v1/orgs/{org}/media (multipart/form-data, field
// "file"): 201 {id, content_type, bytes, width, height, sha256}. The format
// is read from the bytes; the part's file name and declared type are
// ignored.
func (s *Server) uploadMedia(c *gin.Context) {
	if s.Media == nil {
		problem(c, http.StatusServiceUnavailable, "media_unavailable", "this server keeps no media (no blob store configured)", nil)
		return
	}
	if ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); ct != "multipart/form-data" {
		problem(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the image as multipart/form-data, in the field \"file\"", nil)
		return
	}
	mr, err := c.Request.MultipartReader()
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid_multipart", "the multipart body does not parse: "+err.Error(), nil)
		return
	}
	var data []byte
	found := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err == nil && part.FormName() == "file" && !found {
			found = true
			data, err = io.ReadAll(io.LimitReader(part, media.MaxBytes+1))
		} else if err == nil {
			_, err = io.Copy(io.Discard, part)
		}
		if err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				s.fail(c, &cs.Error{Code: media.CodeTooLarge, Message: fmt.Sprintf("the upload is over %d bytes (10 MB), the largest image", media.MaxBytes),
					Fields: []cs.FieldError{{Field: "file", Message: "at most 10 MB"}}})
				return
			}
			problem(c, http.StatusBadRequest, "invalid_multipart", "the multipart body does not parse: "+err.Error(), nil)
			return
		}
	}
	if !found {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "send the image in the multipart field \"file\"", Fields: []cs.FieldError{{Field: "file", Message: "is required"}}})
		return
	}
	m, err := s.Media.Upload(c, currentMember(c), data)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/v1/orgs/%s/media/%s", m.OrgID, m.ID))
	c.JSON(http.StatusCreated, m)
}

// mediaAccess lets a GET of an image through for a member of its org (API
// token) or for whoever holds a valid, unexpired signed URL of exactly this
// image (expires and signature in the query). Anything else is 401, 403 or
// 404, as for the rest of the API.
func (s *Server) mediaAccess(c *gin.Context) {
	orgID, ok := pathID(c, "org")
	if !ok {
		return
	}
	mediaID, ok := pathID(c, "media")
	if !ok {
		return
	}
	size, ok := mediaSize(c)
	if !ok {
		return
	}
	if c.Query("signature") != "" || c.Query("expires") != "" {
		if err := s.MediaURLs.Check(orgID, mediaID, size, c.Query("expires"), c.Query("signature")); err != nil {
			s.fail(c, err)
			return
		}
		c.Next()
		return
	}
	user, ok := s.bearerUser(c)
	if !ok {
		return
	}
	c.Set(userKey, user)
	m, err := s.Store.MemberOfUser(c, orgID, user.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(memberKey, m)
	c.Next()
}

// mediaSize reads ?size= (absent: the image; "thumbnail"); anything else
// is a 400 naming the parameter.
func mediaSize(c *gin.Context) (string, bool) {
	size, given := c.GetQuery("size")
	if !given || size == media.SizeThumbnail {
		return size, true
	}
	problem(c, http.StatusBadRequest, "invalid_query", fmt.Sprintf("size must be %q or absent (the image itself), not %q", media.SizeThumbnail, size),
		[]cs.FieldError{{Field: "size", Message: fmt.Sprintf("must be %q or absent", media.SizeThumbnail)}})
	return "", false
}

// getMedia serves an image, or its thumbnail (?size=thumbnail), with its
// stored (sniffed) content type, never one a client declared, and headers
// that keep a browser from running it as anything but an image.
func (s *Server) getMedia(c *gin.Context) {
	if s.Media == nil {
		problem(c, http.StatusServiceUnavailable, "media_unavailable", "this server keeps no media (no blob store configured)", nil)
		return
	}
	orgID, mediaID := strings.ToLower(c.Param("org")), strings.ToLower(c.Param("media"))
	var (
		m     cs.Media
		rc    io.ReadCloser
		err   error
		thumb bool
	)
	if c.Query("size") == media.SizeThumbnail {
		m, rc, thumb, err = s.Media.OpenThumbnail(c, orgID, mediaID)
	} else {
		m, rc, err = s.Media.OpenMedia(c, orgID, mediaID)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	defer rc.Close()
	name := m.ID
	if thumb {
		name += "-thumbnail"
	}
	ext := strings.TrimPrefix(m.ContentType, "image/")
	if ext == "jpeg" {
		ext = "jpg"
	}
	c.DataFromReader(http.StatusOK, m.Bytes, m.ContentType, rc, map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
		"Content-Disposition":     fmt.Sprintf("inline; filename=%q", name+"."+ext),
		"Cache-Control":           "private, max-age=3600",
		"ETag":                    `"` + m.SHA256 + `"`,
	})
}
