package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/temporalclient"
)

// healthz is liveness: the process serves HTTP.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz is readiness: PostgreSQL answers, Temporal answers, and Temporal
// reports a worker polling the task queue. Each check says what failed.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	checks := gin.H{}
	ready := true
	check := func(name string, err error) {
		if err != nil {
			checks[name] = err.Error()
			ready = false
			return
		}
		checks[name] = "ok"
	}
	check("database", s.Store.Ping(ctx))
	_, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	check("temporal", err)
	if err == nil {
		polling, err := temporalclient.WorkerPolling(ctx, s.Temporal, cs.TaskQueue)
		if err == nil && !polling {
			err = errNoWorker
		}
		check("worker", err)
	} else {
		check("worker", errTemporalDown)
	}
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not_ready"
	}
	c.JSON(status, gin.H{"status": word, "checks": checks})
}

type readyError string

func (e readyError) Error() string { return string(e) }

const (
	errNoWorker     = readyError("no worker is polling task queue " + cs.TaskQueue)
	errTemporalDown = readyError("unknown: Temporal does not answer")
)
