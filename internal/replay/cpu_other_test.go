//go:build !unix

package replay

import "time"

// processCPU returns 0: the process CPU time is only read on Unix.
func processCPU() time.Duration { return 0 }
