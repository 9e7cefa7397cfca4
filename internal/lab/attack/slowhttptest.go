package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// slowInterval is the gap between follow-up bytes of slow attacks: a fifth
// of the burst, rounded to whole seconds (slowhttptest's -i unit), between
// 1 s and 10 s (slowhttptest's default).
func slowInterval(d time.Duration) time.Duration {
	return min(10*time.Second, max(time.Second, (d/5).Round(time.Second)))
}

// slowConnRate is new connections per second: Rate, or all Connections
// within about a second when Rate is 0.
func slowConnRate(s Spec) int {
	if s.Rate > 0 {
		return max(1, int(math.Ceil(s.Rate)))
	}
	return s.Connections
}

// slowContentLength is the Content-Length a slow POST announces, in bytes.
const slowContentLength = 100_000

// runSlowhttptest drives slowloris (-H), slow POST (-B) or slow read (-X)
// with slowhttptest for d. slowhttptest cannot set headers: it sends the
// cookie lab_class=bot, and connects through the relay, which carries the
// source of each connection (X-Forwarded-For after the request line, or a
// PROXY header), records the first response status, counts the connections
// (including slowhttptest's about one-a-second availability probe, marked
// like the rest) and those the target closed (Result.Errors). The tool's
// -l is
// whole seconds; it is stopped with SIGINT at d and still writes its CSV.
func runSlowhttptest(ctx context.Context, j *job, d time.Duration) (Result, error) {
	s := j.spec
	dir, err := os.MkdirTemp("", "portcullis-slowhttptest-")
	if err != nil {
		return Result{}, fmt.Errorf("attack: slowhttptest: %w", err)
	}
	defer os.RemoveAll(dir)
	mode := relayXFF
	if j.target.ProxyProtocol {
		mode = relayProxy
	}
	rl, err := startRelay(j, mode, s.Kind == KindSlowRead, true)
	if err != nil {
		return Result{}, err
	}
	prefix := filepath.Join(dir, "stats")
	args := []string{
		"-c", strconv.Itoa(s.Connections), "-r", strconv.Itoa(slowConnRate(s)),
		"-i", strconv.Itoa(int(slowInterval(d) / time.Second)),
		"-l", strconv.Itoa(int(math.Ceil(d.Seconds())) + 1),
		"-u", "http://" + rl.addr() + s.Paths[0],
		"-j", ClassCookie + "=" + j.marker,
		"-t", s.Method, "-p", "5", "-g", "-o", prefix,
	}
	switch s.Kind {
	case KindSlowloris:
		args = append(args, "-H", "-x", "24")
	case KindSlowPost:
		args = append(args, "-B", "-x", "24", "-s", strconv.Itoa(slowContentLength))
	case KindSlowRead:
		args = append(args, "-X", "-k", "1", "-n", "1", "-w", "1", "-y", "512", "-z", "32")
	}
	out, runErr := runTool(ctx, d, "slowhttptest", args...)
	rs := rl.close()
	csv, err := os.ReadFile(prefix + ".csv")
	if err != nil {
		return Result{}, errors.Join(fmt.Errorf("attack: slowhttptest: no statistics: %w", err), runErr)
	}
	res, err := parseSlowhttptest(out, csv)
	if err != nil {
		return Result{}, err
	}
	// The relay sees every close the target makes; slowhttptest's CSV only
	// once a second.
	res.Errors = max(res.Errors, rs.cut) + rs.dialErrors
	// Connections the target cut within the first second never show in
	// the CSV; the relay counted every one (and slowhttptest's
	// availability probes, which carry the same cookie).
	res.Sent = max(res.Sent, rs.accepted)
	res.Connections = max(res.Connections, rs.accepted-rs.dialErrors)
	res.Statuses = rs.statuses
	if len(res.Statuses) == 0 {
		res.Statuses = nil
	}
	return res, nil
}

// parseSlowhttptest reads slowhttptest's CSV statistics (-g -o: a header
// "Seconds,Closed,Pending,Connected,Service Available" then one row per
// second) and its "Exit status:" line. Sent is the most connections it had
// in play (closed + pending + connected) in any second, Connections the
// most that had connected (closed + connected), Errors the connections the
// target closed by the last second. An exit status other than a normal end
// (time limit, cancelled, no open connections left) is an error.
func parseSlowhttptest(out, csv []byte) (Result, error) {
	var res Result
	rows := 0
	var lastClosed uint64
	sc := bufio.NewScanner(bytes.NewReader(csv))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "Seconds") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 {
			return Result{}, fmt.Errorf("attack: slowhttptest: csv row %q: want 5 fields", line)
		}
		var v [3]uint64
		for i := range v {
			n, err := strconv.ParseUint(strings.TrimSpace(f[i+1]), 10, 64)
			if err != nil {
				return Result{}, fmt.Errorf("attack: slowhttptest: csv row %q: %w", line, err)
			}
			v[i] = n
		}
		closed, pending, connected := v[0], v[1], v[2]
		res.Sent = max(res.Sent, closed+pending+connected)
		res.Connections = max(res.Connections, closed+connected)
		lastClosed = closed
		rows++
	}
	if rows == 0 {
		return Result{}, fmt.Errorf("attack: slowhttptest: empty statistics")
	}
	res.Errors = lastClosed
	status := slowExitStatus(out)
	switch status {
	case "", "Hit test time limit", "Cancelled by user", "No open connections left":
	default:
		return res, fmt.Errorf("attack: slowhttptest: exit status %q", status)
	}
	return res, nil
}

// slowExitStatus returns the text after "Exit status:" with terminal colour
// codes removed, or "".
func slowExitStatus(out []byte) string {
	clean := stripANSI(out)
	i := bytes.LastIndex(clean, []byte("Exit status:"))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(clean[i+len("Exit status:"):], []byte("\n"))
	return strings.TrimSpace(string(line))
}

// stripANSI removes ANSI CSI escape sequences (ESC '[' params final-byte).
func stripANSI(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '[' {
			j := i + 2
			for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		out = append(out, b[i])
	}
	return out
}
