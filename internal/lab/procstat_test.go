package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeProc writes a /proc-like tree: pid → (ppid, utime+stime split, VmHWM kB).
func fakeProc(t *testing.T, procs map[int][3]int) string {
	t.Helper()
	dir := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// A command name with spaces and a parenthesis, as proc(5) allows.
		stat := strconv.Itoa(pid) + " (nginx: worker) x) S " + strconv.Itoa(p[0]) + " 1 1 0 -1 4194560 100 0 0 0 " +
			strconv.Itoa(p[1]) + " " + strconv.Itoa(p[1]) + " 0 0 20 0 1 0 100 1000 10\n"
		status := "Name:\tnginx\nVmPeak:\t 9999 kB\nVmHWM:\t" + strconv.Itoa(p[2]) + " kB\nVmRSS:\t 1 kB\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSampleProcs(t *testing.T) {
	// 10 is the master, 11 and 12 its workers, 13 a worker's child; 20 is
	// unrelated. Ticks are utime = stime = p[1].
	before := fakeProc(t, map[int][3]int{10: {1, 5, 1000}, 11: {10, 50, 2000}, 20: {1, 999, 9999}})
	after := fakeProc(t, map[int][3]int{10: {1, 10, 1000}, 11: {10, 150, 3000}, 12: {10, 25, 500}, 13: {12, 5, 100}, 20: {1, 2000, 9999}})
	a, err := sampleProcs(before, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sampleProcs(after, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	u := usageBetween(a, b)
	// CPU: master (20-10) + worker 11 (300-100) + new 12 (50) + new 13 (10) = 270 ticks.
	tests := []struct {
		name      string
		got, want float64
	}{
		{"cpu seconds over the tree, new processes from zero", u.CPUSeconds, 2.7},
		{"peak rss summed over the tree", float64(u.PeakRSSBytes), (1000 + 3000 + 500 + 100) * 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if _, err := sampleProcs(after, []int{99}); err == nil {
		t.Error("a missing process must be an error")
	}
}

// TestSampleProcsReal reads the real /proc for this process and a child.
func TestSampleProcsReal(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start a child:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s, err := sampleProcs("/proc", []int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ticks[cmd.Process.Pid]; !ok {
		t.Errorf("child %d not found under %d", cmd.Process.Pid, os.Getpid())
	}
	if s.hwm < 1<<20 {
		t.Errorf("peak RSS %d bytes: implausible for a Go test", s.hwm)
	}
}
