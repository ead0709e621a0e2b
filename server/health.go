package server

import (
	"context"
	"errors"
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

// readyz is readiness: PostgreSQL answers ("database"), Temporal answers
// ("temporal"), and Temporal reports a worker polling the task queue
// ("worker"). Anyone may call it (SPEC §8), so each check says only "ok" or
// "failing": why it failed (driver errors name hosts and the database user)
// goes to the log, for the operator.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	checks := gin.H{}
	ready := true
	check := func(name string, err error) {
		if err == nil {
			checks[name] = "ok"
			return
		}
		checks[name] = "failing"
		ready = false
		s.Logger.Warn("readiness check failed", "check", name, "error", err)
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
	c.Header("Cache-Control", "no-store")
	c.JSON(status, gin.H{"status": word, "checks": checks})
}

var (
	errNoWorker     = errors.New("no worker is polling task queue " + cs.TaskQueue)
	errTemporalDown = errors.New("unknown: Temporal does not answer")
)
