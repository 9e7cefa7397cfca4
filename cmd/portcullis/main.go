// Command portcullis is a self-hosted DDoS shield: a hardened reverse proxy
// with in-process attack detection and mitigation. See README.md.
package main

import (
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		os.Exit(exitCode(err))
	}
}
