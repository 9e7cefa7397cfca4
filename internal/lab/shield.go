package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/portcullis/portcullis/internal/challenge"
	"github.com/portcullis/portcullis/internal/config"
)

// MemberHeader is the origin response header the lab origin sets when a
// member logs in, and that the self-contained shield is configured to read
// (challenge.member_header): the shield turns it into member standing.
const MemberHeader = challenge.DefaultMemberHeader

// ShieldParams are the addresses of a self-contained run's shield.
type ShieldParams struct {
	// Listen and Admin are loopback host:port pairs for the client and
	// admin listeners.
	Listen, Admin string
	// Origin is the instrumented origin's base URL (http://127.0.0.1:PORT).
	Origin string
	// DataDir is the shield's (temporary) data directory.
	DataDir string
}

// ShieldConfig returns the Portcullis configuration (YAML) of a
// self-contained run: the client listener with 127.0.0.1 as the one trusted
// proxy (the lab's clients carry their simulated address in
// X-Forwarded-For), the origin as the single site's upstream, the member
// header, /login as the auth route and, with /donate and /account,
// critical priority, /search as the expensive, low-priority route, and the
// rate limits of `portcullis demo` (600/min per address, 3000/min per /24,
// 10/min per address on /login). No micro-cache: pages the origin does not
// mark reach it every time, so bot leak measures the filters, not a cache.
// The scenario's Shield overrides are deep-merged on top. Errors: the
// merged document is not a valid configuration (config.Parse's errors).
func (s *Scenario) ShieldConfig(p ShieldParams) ([]byte, error) {
	site := map[string]any{
		"name":             "lab",
		"origins":          []any{p.Origin},
		"auth_routes":      []any{"/login"},
		"expensive_routes": []any{"/search"},
		"priorities": []any{
			map[string]any{"path": "/login", "priority": "critical"},
			map[string]any{"path": "/donate", "priority": "critical"},
			map[string]any{"path": "/account", "priority": "critical"},
			map[string]any{"path": "/search", "priority": "low"},
		},
		"rules": map[string]any{"rate_limits": []any{
			map[string]any{"name": "per-address", "key": "address", "rate": "600/1m", "burst": 60},
			map[string]any{"name": "per-prefix", "key": "prefix", "rate": "3000/1m", "burst": 300},
			map[string]any{"name": "login", "key": "address", "rate": "10/1m", "burst": 10, "paths": []any{"/login"}},
		}},
	}
	doc := map[string]any{
		"listeners": []any{map[string]any{"address": p.Listen}},
		"admin":     map[string]any{"address": p.Admin},
		"data_dir":  p.DataDir,
		"client_ip": map[string]any{"trusted_proxies": []any{"127.0.0.1/32"}},
		"log":       map[string]any{"level": "warn"},
		"challenge": map[string]any{"member_header": MemberHeader},
	}
	over := maps.Clone(s.Shield)
	if so, ok := over["site"]; ok {
		m, ok := so.(map[string]any)
		if !ok {
			return nil, errors.New("shield.site: want a mapping")
		}
		mergeInto(site, m)
		delete(over, "site")
	}
	if _, ok := over["sites"]; ok {
		return nil, errors.New("shield.sites: use shield.site (the lab runs one site)")
	}
	doc["sites"] = []any{site}
	mergeInto(doc, over)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("lab: shield config: %w", err)
	}
	if _, err := config.Parse("shield", out); err != nil {
		return nil, err
	}
	return out, nil
}

// mergeInto deep-merges src into dst: nested mappings merge key by key,
// any other value replaces.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dm = maps.Clone(dm)
				mergeInto(dm, sm)
				dst[k] = dm
				continue
			}
		}
		dst[k] = v
	}
}

// shieldProc is a `portcullis serve` child process of a self-contained run.
type shieldProc struct {
	cmd         *exec.Cmd
	dir         string
	logs        *tailBuffer
	listen      string
	admin       string
	done        chan struct{}
	waitErr     error
	stopOnce    sync.Once
	stopTimeout time.Duration
}

// freeLoopbackAddr returns a currently free 127.0.0.1 port.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startShield writes the scenario's shield configuration into a temporary
// directory and starts bin ("portcullis") as `serve --config FILE` with env
// added to the lab's environment and its output copied to logTo (if not nil), then waits (≤ readyTimeout) until its admin
// /healthz answers 200. Errors name what failed and carry the tail of the
// shield's log.
func startShield(ctx context.Context, bin string, sc *Scenario, origin string, env []string, logTo io.Writer, readyTimeout time.Duration) (*shieldProc, error) {
	dir, err := os.MkdirTemp("", "portcullis-lab-")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	sp := &shieldProc{dir: dir, logs: &tailBuffer{max: 64 << 10}, done: make(chan struct{}), stopTimeout: 10 * time.Second}
	fail := func(err error) (*shieldProc, error) {
		sp.stop()
		return nil, err
	}
	if sp.listen, err = freeLoopbackAddr(); err != nil {
		return fail(err)
	}
	if sp.admin, err = freeLoopbackAddr(); err != nil {
		return fail(err)
	}
	cfg, err := sc.ShieldConfig(ShieldParams{Listen: sp.listen, Admin: sp.admin, Origin: origin, DataDir: filepath.Join(dir, "data")})
	if err != nil {
		return fail(fmt.Errorf("lab: shield config: %w", err))
	}
	file := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(file, cfg, 0o600); err != nil {
		return fail(fmt.Errorf("lab: %w", err))
	}
	sp.cmd = exec.Command(bin, "serve", "--config", file)
	sp.cmd.Env = append(os.Environ(), env...)
	var out io.Writer = sp.logs
	if logTo != nil {
		out = io.MultiWriter(sp.logs, logTo)
	}
	sp.cmd.Stdout, sp.cmd.Stderr = out, out
	if err := sp.cmd.Start(); err != nil {
		sp.cmd = nil
		return fail(fmt.Errorf("lab: start shield %s: %w", bin, err))
	}
	go func() { sp.waitErr = sp.cmd.Wait(); close(sp.done) }()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := hc.Get("http://" + sp.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sp, nil
			}
		}
		select {
		case <-sp.done:
			return fail(fmt.Errorf("lab: shield exited during start (%v); its log:\n%s", sp.waitErr, sp.logs.String()))
		case <-ctx.Done():
			return fail(fmt.Errorf("lab: waiting for the shield: %w", ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("lab: shield not ready after %s; its log:\n%s", readyTimeout, sp.logs.String()))
		}
	}
}

// pid returns the child's process id.
func (sp *shieldProc) pid() int { return sp.cmd.Process.Pid }

// stop ends the child with SIGTERM (SIGKILL after stopTimeout) and removes
// its temporary directory. Safe to call more than once.
func (sp *shieldProc) stop() {
	sp.stopOnce.Do(func() {
		if sp.cmd != nil && sp.cmd.Process != nil {
			_ = sp.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-sp.done:
			case <-time.After(sp.stopTimeout):
				_ = sp.cmd.Process.Kill()
				<-sp.done
			}
		}
		os.RemoveAll(sp.dir)
	})
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
