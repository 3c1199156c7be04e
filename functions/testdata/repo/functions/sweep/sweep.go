// Package sweep is a fixture for functions/template_test.go: a scheduled SLA sweep.
package sweep

import "os"

// Config is parsed from the environment.
type Config struct {
	Table string `env:"SWEEP_TABLE"`
}

// DryRun reports whether the sweep only logs what it would do.
func DryRun() bool {
	_, ok := os.LookupEnv("SWEEP_DRY_RUN")
	return ok
}
