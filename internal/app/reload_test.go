package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/portcullis/portcullis/internal/config"
)

// startFromFile runs an app whose Load reads path, and returns the app and
// the shield's base URL.
func startFromFile(t *testing.T, path string) (*App, string, string) {
	t.Helper()
	ready := make(chan [2]net.Addr, 1)
	a, err := New(Options{
		ConfigFile: path,
		Load:       func() (*config.Config, error) { return config.Load(path) },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:      func(l []net.Addr, adm net.Addr) { ready <- [2]net.Addr{l[0], adm} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addrs := <-ready:
		return a, "http://" + addrs[0].String(), "http://" + addrs[1].String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	return nil, "", ""
}

func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestReloadKeepsOldConfigOnError swaps in a valid change, then writes a
// broken file: the running configuration (and rate-limit state) must stay.
func TestReloadKeepsOldConfigOnError(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := `listeners: [{address: "127.0.0.1:0"}]
data_dir: ` + t.TempDir() + `
admin: {address: "127.0.0.1:0", token: "t0ken"}
client_ip: {trusted_proxies: [127.0.0.1]}
rules:
  rate_limits: [{name: per-address, rate: 3/1m, burst: 3}]
%s
sites: [{origins: ["` + origin.URL + `"], health_check: {path: ""}}]
`
	write(strings.Replace(base, "%s", "", 1))
	a, shield, admin := startFromFile(t, path)

	// Spend 2 of the 3 tokens of 203.0.113.7 before the reload.
	for i := 0; i < 2; i++ {
		if c := get(t, shield+"/", "X-Forwarded-For", "203.0.113.7").StatusCode; c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	// A valid change: deny 198.51.100.0/24.
	write(strings.Replace(base, "%s", "  deny: [198.51.100.0/24]", 1))
	if err := a.Reload(context.Background()); err != nil {
		t.Fatalf("valid reload failed: %v", err)
	}
	if c := get(t, shield+"/", "X-Forwarded-For", "198.51.100.9").StatusCode; c != 403 {
		t.Fatalf("deny after reload: %d", c)
	}
	// Rate-limit state survived: one token left, then 429.
	if c := get(t, shield+"/", "X-Forwarded-For", "203.0.113.7").StatusCode; c != 200 {
		t.Fatalf("third request: %d", c)
	}
	if c := get(t, shield+"/", "X-Forwarded-For", "203.0.113.7").StatusCode; c != 429 {
		t.Fatalf("fourth request: %d, want 429 (state lost in reload?)", c)
	}
	// A broken file: the reload fails and the deny rule stays in force.
	write("sites: [{origins: [\"ftp://nope\"]}]\nbogus: true\n")
	err := a.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "portcullis.yaml:") {
		t.Fatalf("bad reload error = %v", err)
	}
	if c := get(t, shield+"/", "X-Forwarded-For", "198.51.100.9").StatusCode; c != 403 {
		t.Fatalf("deny after failed reload: %d", c)
	}
	// The failure is visible in metrics (with the token).
	resp := get(t, admin+"/metrics")
	if resp.StatusCode != 401 {
		t.Fatalf("metrics without token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	mr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, want := range []string{`portcullis_config_reloads_total{result="failure"} 1`, `portcullis_config_reloads_total{result="success"} 1`, `portcullis_http_requests_total{action="block",site="default"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(string(body), "portcullis_"))
		}
	}
}

// TestReloadOnFileChange checks that saving the file reloads it.
func TestReloadOnFileChange(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	path := filepath.Join(t.TempDir(), "p.yaml")
	cfg := `listeners: [{address: "127.0.0.1:0"}]
data_dir: ` + t.TempDir() + `
admin: {address: "127.0.0.1:0"}
sites: [{origins: ["` + origin.URL + `"], health_check: {path: ""}}]
`
	os.WriteFile(path, []byte(cfg), 0o644)
	_, shield, _ := startFromFile(t, path)
	if c := get(t, shield+"/").StatusCode; c != 200 {
		t.Fatalf("before: %d", c)
	}
	os.WriteFile(path, []byte("rules: {deny: [127.0.0.1]}\n"+cfg), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for get(t, shield+"/").StatusCode != 403 {
		if time.Now().After(deadline) {
			t.Fatal("file change was not picked up within 5s")
		}
		time.Sleep(50 * time.Millisecond) // polling an asynchronous file watch
	}
}

// TestMetricNames lints every metric the app registers (Prometheus naming
// conventions, portcullis_ prefix, base units).
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.setSites([]string{"www"})
	m.refused.WithLabelValues("global").Inc()
	m.reloads.WithLabelValues("success").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "portcullis_") {
			t.Errorf("%s lacks the portcullis_ prefix", mf.GetName())
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
