// Package scenarios embeds the attack lab's shipped scenario files
// (*.yaml in this directory) into the portcullis binary. The format is
// documented by internal/lab.Scenario; `portcullis lab list` shows them.
package scenarios

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// FS returns the shipped scenario files, one NAME.yaml per scenario at the
// root of the file system.
func FS() fs.FS { return files }
