//go:build dev

package main

// The dev build links the embedded Temporal server and Web UI; the production
// build (no tag) does not.
import _ "github.com/countersign/countersign/internal/devstack/devcmd"
