package server

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the API's OpenAPI 3 description, served at GET /openapi.yaml. A
// test keeps its paths and methods equal to the router's.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", OpenAPI)
}
