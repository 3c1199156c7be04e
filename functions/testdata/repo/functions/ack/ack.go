// Package ack is a fixture for functions/template_test.go: an acknowledgement function whose
// configuration comes from env tags and from os.Getenv.
package ack

import "os"

// Config is parsed from the environment.
type Config struct {
	Table  string `env:"ACK_TABLE,required"`
	Bucket string `env:"ACK_BUCKET" envDefault:"mail"`
	// Region is set by Lambda itself.
	Region string `env:"AWS_REGION"`
	Notes  string `json:"notes"`
}

const languageVar = "ACK_LANGUAGE"

// Language is read through a constant.
func Language() string { return os.Getenv(languageVar) }

func sender() string { return os.Getenv("ACK_SENDER") }
