package attack

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed wrk.lua.tmpl
var wrkLuaText string

// wrkResultPrefix starts the line the generated Lua script's done() prints.
const wrkResultPrefix = "PORTCULLIS_LAB_WRK"

// wrkLua is the parsed script template; lua quotes a string as a Lua
// literal (inputs are printable ASCII: Validate checks paths and methods).
var wrkLua = template.Must(template.New("wrk.lua").Funcs(template.FuncMap{
	"lua": strconv.Quote,
}).Parse(wrkLuaText))

// wrkScript holds the template's parameters.
type wrkScript struct {
	SourcesFile  string
	Paths        []string
	Method       string
	Marker       string
	Host         string // the target's, also when wrk connects to the relay
	ClassHeader  string
	CapPerThread uint64
	Threads      int
	Bust         bool
	Login        bool
	Agents       []string
	ResultPrefix string
}

// writeWrkScript renders the Lua script and the sources file for j into dir
// and returns the script's path.
func writeWrkScript(dir string, j *job, threads int) (string, error) {
	p := wrkScript{
		Paths:        j.spec.Paths,
		Method:       j.spec.Method,
		Marker:       j.marker,
		Host:         j.target.URL.Host,
		ClassHeader:  ClassHeader,
		CapPerThread: MaxRequests / uint64(threads),
		Threads:      threads,
		Bust:         j.spec.Kind == KindCacheBusting,
		Login:        j.spec.Kind == KindLoginFlood && j.spec.Method != "GET" && j.spec.Method != "HEAD",
		Agents:       userAgents[:],
		ResultPrefix: wrkResultPrefix,
	}
	if len(j.xff) > 0 && !j.target.ProxyProtocol {
		p.SourcesFile = filepath.Join(dir, "sources.txt")
		if err := os.WriteFile(p.SourcesFile, []byte(strings.Join(j.xff, "\n")+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("attack: wrk: %w", err)
		}
	}
	var buf bytes.Buffer
	if err := wrkLua.Execute(&buf, p); err != nil {
		return "", fmt.Errorf("attack: wrk: script: %w", err)
	}
	path := filepath.Join(dir, "attack.lua")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("attack: wrk: %w", err)
	}
	return path, nil
}

// runWrk runs wrk (unpaced, Connections connections over up to 2 threads)
// for d: wrk's -d is whole seconds, so it is rounded up and wrk is stopped
// with SIGINT at d, after which it still prints its summary. Under
// ProxyProtocol wrk goes through the PROXY relay (one source per
// connection); otherwise the script rotates X-Forwarded-For per request.
func runWrk(ctx context.Context, j *job, d time.Duration) (Result, error) {
	dir, err := os.MkdirTemp("", "portcullis-wrk-")
	if err != nil {
		return Result{}, fmt.Errorf("attack: wrk: %w", err)
	}
	defer os.RemoveAll(dir)
	threads := min(2, j.spec.Connections)
	script, err := writeWrkScript(dir, j, threads)
	if err != nil {
		return Result{}, err
	}
	target := *j.target.URL
	target.Path, target.RawQuery = "/", ""
	var rl *relay
	if j.target.ProxyProtocol {
		if rl, err = startRelay(j, relayProxy, false, false); err != nil {
			return Result{}, err
		}
		target.Host = rl.addr()
	}
	secs := int(math.Ceil(d.Seconds()))
	out, err := runTool(ctx, d, "wrk",
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(j.spec.Connections),
		"-d", strconv.Itoa(secs)+"s", "--timeout", strconv.Itoa(int(requestTimeout/time.Second))+"s",
		"-s", script, target.String())
	var rs relayStats
	if rl != nil {
		rs = rl.close()
	}
	res, perr := parseWrk(out)
	if perr != nil {
		return Result{}, errors.Join(perr, err)
	}
	if rl != nil {
		res.Connections = rs.accepted
	}
	return res, nil
}

// wrkLine is the JSON the Lua script's done() prints after wrkResultPrefix.
type wrkLine struct {
	Sent      uint64 `json:"sent"`
	Completed uint64 `json:"completed"`
	Closes    uint64 `json:"closes"`
	Errors    struct {
		Connect uint64 `json:"connect"`
		Read    uint64 `json:"read"`
		Write   uint64 `json:"write"`
		Status  uint64 `json:"status"`
		Timeout uint64 `json:"timeout"`
	} `json:"errors"`
	Statuses map[string]uint64 `json:"statuses"`
}

// parseWrk reads wrk's output for the script's result line and the
// "N threads and C connections" header. Connections is C plus the
// reconnects wrk makes (after "Connection: close" responses and read/write
// errors); Errors is connect + read + write + timeout errors (non-2xx
// statuses are counted in Statuses, not as errors).
func parseWrk(out []byte) (Result, error) {
	var line *wrkLine
	var conns uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(t, wrkResultPrefix+" "); ok {
			line = new(wrkLine)
			if err := json.Unmarshal([]byte(rest), line); err != nil {
				return Result{}, fmt.Errorf("attack: wrk: result line: %w", err)
			}
			continue
		}
		// "2 threads and 8 connections"
		if f := strings.Fields(t); len(f) == 5 && f[1] == "threads" && f[4] == "connections" {
			conns, _ = strconv.ParseUint(f[3], 10, 64)
		}
	}
	if line == nil {
		return Result{}, fmt.Errorf("attack: wrk: no result line in output: %q", lastLines(out, 5))
	}
	res := Result{
		Sent:        line.Sent,
		Errors:      line.Errors.Connect + line.Errors.Read + line.Errors.Write + line.Errors.Timeout,
		Connections: conns + line.Closes + line.Errors.Read + line.Errors.Write,
	}
	for code, n := range line.Statuses {
		c, err := strconv.Atoi(code)
		if err != nil || c < 100 || c > 999 {
			return Result{}, fmt.Errorf("attack: wrk: result line: bad status %q", code)
		}
		if res.Statuses == nil {
			res.Statuses = make(map[int]uint64)
		}
		res.Statuses[c] += n
	}
	return res, nil
}

// runTool runs an external tool with a deadline of d (plus a 2 s grace if
// the tool ignores SIGINT), returning its combined output. At d, or when ctx
// ends, the tool gets SIGINT, so it can still print its summary; it is
// killed 3 s later if it has not exited. The error is nil when the tool
// exited 0 or was stopped by the deadline.
func runTool(ctx context.Context, d time.Duration, name string, args ...string) ([]byte, error) {
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(tctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 3 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && tctx.Err() != nil && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // stopped on schedule by SIGINT
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("attack: %s: %w: %s", name, err, lastLines(out.Bytes(), 3))
	}
	return out.Bytes(), nil
}

// lastLines returns up to n last non-empty lines of out, for error messages.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
