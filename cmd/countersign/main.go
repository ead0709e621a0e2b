// Command countersign runs Countersign: serve, worker, migrate, bootstrap,
// and (built with -tags dev) the all-in-one dev stack.
package main

import (
	"os"

	"github.com/countersign/countersign/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
