// Command bootstrap is the fixture acknowledgement Lambda.
package main

import o "os"

func main() {
	if _, ok := o.LookupEnv("ACK_LOG_LEVEL"); !ok {
		o.Exit(1)
	}
}
