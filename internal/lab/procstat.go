package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicksPerSecond is Linux's USER_HZ, the unit of utime and stime in
// /proc/PID/stat (proc(5)); it is 100 on every mainstream architecture and
// cannot be read without cgo (sysconf(_SC_CLK_TCK)).
const clockTicksPerSecond = 100

// ProcUsage is what the front under test cost: the CPU time and the peak
// resident memory of its processes.
type ProcUsage struct {
	// CPUSeconds is user+system CPU time spent during the run (the
	// difference of two samples), summed over the processes.
	CPUSeconds float64
	// PeakRSSBytes is the sum over the processes of their peak resident
	// set size (VmHWM), in bytes.
	PeakRSSBytes uint64
}

// procSample is CPU ticks per process and the summed VmHWM of a process
// tree at one moment.
type procSample struct {
	ticks map[int]uint64
	hwm   uint64
}

// sampleProcs reads /proc for roots and all their descendants (found by
// parent pid, so worker processes of nginx or HAProxy count); each
// process's stat file is read once. Processes that vanish while being read
// are skipped. Error: no root exists.
func sampleProcs(proc string, roots []int) (procSample, error) {
	s := procSample{ticks: map[int]uint64{}}
	stats := map[int]statLine{}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return s, fmt.Errorf("lab: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(proc, pid); ok {
			stats[pid] = st
		}
	}
	want := map[int]bool{}
	for _, r := range roots {
		if _, ok := stats[r]; ok {
			want[r] = true
		}
	}
	if len(want) == 0 {
		return s, fmt.Errorf("lab: none of the processes %v exists", roots)
	}
	for changed := true; changed; {
		changed = false
		for pid, st := range stats {
			if want[st.ppid] && !want[pid] {
				want[pid], changed = true, true
			}
		}
	}
	for pid := range want {
		s.ticks[pid] = stats[pid].ticks
		s.hwm += readHWM(proc, pid)
	}
	return s, nil
}

// usageBetween is the CPU time spent between two samples (a process that
// appeared in between counts from zero) and the peak memory of the later.
func usageBetween(a, b procSample) ProcUsage {
	var ticks uint64
	for pid, t := range b.ticks {
		if t0, ok := a.ticks[pid]; ok && t0 <= t {
			t -= t0
		}
		ticks += t
	}
	return ProcUsage{CPUSeconds: float64(ticks) / clockTicksPerSecond, PeakRSSBytes: b.hwm}
}

type statLine struct {
	ppid  int
	ticks uint64 // utime + stime
}

// readStat parses /proc/PID/stat (proc(5)): fields after the parenthesised
// command name are state(3), ppid(4), …, utime(14), stime(15).
func readStat(proc string, pid int) (statLine, bool) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return statLine{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statLine{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return statLine{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return statLine{}, false
	}
	return statLine{ppid: ppid, ticks: ut + st}, true
}

// readHWM returns VmHWM of /proc/PID/status in bytes, 0 when unknown.
func readHWM(proc string, pid int) uint64 {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
