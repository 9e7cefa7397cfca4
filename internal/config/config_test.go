package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(cfg.Sites) == 0 || len(cfg.Sites[0].Origins) == 0 {
				t.Fatalf("no site decoded: %+v", cfg.Sites)
			}
		})
	}
}

func TestFullConfigValues(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ClientIP.TrustedProxies[0].P().String(); got != "127.0.0.10/32" {
		t.Errorf("trusted proxy = %s", got)
	}
	if cfg.ClientIP.IPv6Prefix != 56 || cfg.ClientIP.IPv4Prefix != 24 {
		t.Errorf("prefixes = %d/%d", cfg.ClientIP.IPv4Prefix, cfg.ClientIP.IPv6Prefix)
	}
	if cfg.Limits.MaxBodyBytes != 20<<20 || cfg.Sites[0].Routes[0].MaxBodyBytes != 1<<30 {
		t.Errorf("sizes = %d %d", cfg.Limits.MaxBodyBytes, cfg.Sites[0].Routes[0].MaxBodyBytes)
	}
	if r := cfg.Rules.RateLimits[0].Rate; r.Count != 6000 || r.Period != time.Minute {
		t.Errorf("rate = %+v", r)
	}
	if got := cfg.Rules.Deny[1].P().String(); got != "2001:db8:bad::/48" {
		t.Errorf("deny[1] = %s", got)
	}
	if got := cfg.Sites[1].SensitiveRoutes; len(got) != 2 || got[0] != "/members/export" || got[1] != "/api/donors*" || cfg.Sites[0].SensitiveRoutes != nil {
		t.Errorf("sensitive routes = %q, %q", got, cfg.Sites[0].SensitiveRoutes)
	}
	if cfg.Limits.ReadHeaderTimeout.D() != 5*time.Second || cfg.Limits.IdleTimeout.D() != 60*time.Second {
		t.Errorf("timeouts = %v %v", cfg.Limits.ReadHeaderTimeout, cfg.Limits.IdleTimeout)
	}
}

// TestBadConfigs checks that every invalid file fails with an error that
// names the file, the line:column and the field.
func TestBadConfigs(t *testing.T) {
	want := map[string]string{
		"admin_open.yaml":      "admin_open.yaml:2:12: admin.address: ",
		"bad_cidr.yaml":        "bad_cidr.yaml:2:10: rules.deny[0]: netset: invalid prefix \"203.0.113.0/33\"",
		"bad_duration.yaml":    "bad_duration.yaml:2:24: limits.read_header_timeout: invalid duration",
		"bad_origin.yaml":      "bad_origin.yaml:5:9: sites[0].origins[1]: invalid origin",
		"bad_rate.yaml":        "bad_rate.yaml:4:13: rules.rate_limits[0].rate: invalid rate",
		"no_origin.yaml":       "no_origin.yaml:2:9: sites[0].origins: at least one",
		"sensitive_route.yaml": "sensitive_route.yaml:3:41: sites[0].sensitive_routes[1]: must start with /",
		"syntax.yaml":          "syntax.yaml:3:",
		"unknown_key.yaml":     "unknown_key.yaml:4:5: orgins: unknown field",
		"v6prefix.yaml":        "v6prefix.yaml:2:16: client_ip.ipv6_prefix: must be between 48 and 128",
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("Load succeeded on a bad file")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), want[name]) {
				t.Errorf("error %q does not contain %q", err, want[name])
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

// TestDefaultsMatchDocs checks that the `default` struct tags (which the
// config reference prints) agree with ApplyDefaults for scalar fields.
func TestDefaultsMatchDocs(t *testing.T) {
	cfg := &Config{}
	cfg.ApplyDefaults()
	checked := 0
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		tp := v.Type()
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			p := path + "." + strings.Split(f.Tag.Get("yaml"), ",")[0]
			def, hasDef := f.Tag.Lookup("default")
			switch fv.Kind() {
			case reflect.Struct:
				walk(fv, p)
				continue
			case reflect.Slice:
				if fv.Type().Elem().Kind() == reflect.Struct && fv.Len() > 0 {
					walk(fv.Index(0), p+"[0]")
				}
				continue
			}
			if !hasDef {
				continue
			}
			got := formatValue(fv)
			if got != def {
				t.Errorf("%s: ApplyDefaults gives %q, doc says %q", p, got, def)
			}
			checked++
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	if checked < 20 {
		t.Fatalf("only %d defaults checked", checked)
	}
}

func TestReferenceListsEveryField(t *testing.T) {
	ref := Reference()
	for _, key := range []string{"listeners[].address", "limits.read_header_timeout", "sites[].origins", "rules.rate_limits[].burst", "client_ip.trusted_proxies"} {
		if !strings.Contains(ref, "`"+key+"`") {
			t.Errorf("reference lacks %s", key)
		}
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		rl   RateLimit
		want string
	}{
		{name: "F07 per-minute without burst", rl: RateLimit{Rate: RateSpec{6000, time.Minute}}, want: "default burst"},
		{name: "tiny burst", rl: RateLimit{Rate: RateSpec{6000, time.Minute}, Burst: 5}, want: "below the per-second equivalent"},
		{name: "per-second", rl: RateLimit{Rate: RateSpec{10, time.Second}}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Admin: Admin{Token: "x"}, Rules: Rules{RateLimits: []RateLimit{tc.rl}}}
			cfg.ApplyDefaults()
			w := strings.Join(cfg.Warnings(), "\n")
			if tc.want == "" && w != "" || !strings.Contains(w, tc.want) {
				t.Errorf("warnings %q, want %q", w, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, fn := range files {
		b, _ := os.ReadFile(fn)
		f.Add(b)
	}
	f.Add([]byte("sites: [{origins: [\"http://x\"]}]\nlimits: {max_body_bytes: -1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error is not ErrInvalid: %v", err)
		}
	})
}

func TestSensitiveRoutes(t *testing.T) {
	tests := []struct {
		name   string
		routes string
		want   string // error substring; "" = valid
	}{
		{name: "default empty", routes: "", want: ""},
		{name: "paths and prefixes", routes: `[/members/export, "/api/donors*"]`, want: ""},
		{name: "relative", routes: `[members/export]`, want: "sites[0].sensitive_routes[0]: must start with /"},
		{name: "inner star", routes: `["/api/*/export"]`, want: "sites[0].sensitive_routes[0]: * is allowed only at the end"},
		{name: "duplicate", routes: `[/a, /b, /a]`, want: "sites[0].sensitive_routes[2]: duplicate"},
		{name: "too many", routes: `[/1, /2, /3, /4, /5, /6, /7, /8, /9, /10, /11, /12, /13, /14, /15, /16, /17]`, want: "sites[0].sensitive_routes: at most 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := "admin: {address: off}\nsites:\n  - origins: [\"http://127.0.0.1:8081\"]\n"
			if tc.routes != "" {
				y += "    sensitive_routes: " + tc.routes + "\n"
			}
			_, err := Parse("s.yaml", []byte(y))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRequestBuffering checks the request-buffering settings: defaults
// (1 MiB per body, 64 MiB in all, 8 MiB per client, every route
// buffered), the per-client share derived from the total (never below one
// body), a route's opt-out, and the bounds Validate enforces.
func TestRequestBuffering(t *testing.T) {
	tests := []struct {
		name      string
		limits    string // YAML mapping under limits ("" = none)
		route     string // YAML mapping of sites[0].routes[0] ("" = no route)
		want      string // error substring; "" = valid
		wantBytes int64
		wantTotal int64
		wantShare int64 // request_buffer_per_client_bytes (0 = not checked)
		wantRoute *bool // sites[0].routes[0].buffer_request
	}{
		{name: "defaults", wantBytes: 1 << 20, wantTotal: 64 << 20, wantShare: 8 << 20},
		{name: "per-client share derived from the total", limits: "{request_buffer_total_bytes: 256MiB}", wantBytes: 1 << 20, wantTotal: 256 << 20, wantShare: 32 << 20},
		{name: "derived per-client share never below one body", limits: "{request_buffer_total_bytes: 4MiB}", wantBytes: 1 << 20, wantTotal: 4 << 20, wantShare: 1 << 20},
		{name: "per-client share set", limits: "{request_buffer_per_client_bytes: 2MiB}", wantBytes: 1 << 20, wantTotal: 64 << 20, wantShare: 2 << 20},
		{name: "per-client share equal to the total (no share)", limits: "{request_buffer_per_client_bytes: 64MiB}", wantBytes: 1 << 20, wantTotal: 64 << 20, wantShare: 64 << 20},
		{name: "per-client share below one body", limits: "{request_buffer_per_client_bytes: 512KiB}", want: "limits.request_buffer_per_client_bytes: must be between request_buffer_bytes"},
		{name: "per-client share above the total", limits: "{request_buffer_per_client_bytes: 65MiB}", want: "limits.request_buffer_per_client_bytes: must be between request_buffer_bytes"},
		{name: "route buffered by default", route: "{path: /upload, max_body_bytes: 1GiB}", wantBytes: 1 << 20, wantTotal: 64 << 20, wantRoute: ptr(true)},
		{name: "route opts out", route: "{path: /upload, buffer_request: false}", wantBytes: 1 << 20, wantTotal: 64 << 20, wantRoute: ptr(false)},
		{name: "custom sizes", limits: "{request_buffer_bytes: 64KiB, request_buffer_total_bytes: 8MiB}", wantBytes: 64 << 10, wantTotal: 8 << 20},
		{name: "per-body cap too small", limits: "{request_buffer_bytes: 1KiB}", want: "limits.request_buffer_bytes: must be at least 4KiB"},
		{name: "total below per-body cap", limits: "{request_buffer_bytes: 2MiB, request_buffer_total_bytes: 1MiB}", want: "limits.request_buffer_total_bytes: must be at least request_buffer_bytes"},
		{name: "bad size", limits: "{request_buffer_bytes: lots}", want: "limits.request_buffer_bytes: invalid size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := "admin: {address: off}\n"
			if tc.limits != "" {
				y += "limits: " + tc.limits + "\n"
			}
			y += "sites:\n  - origins: [\"http://127.0.0.1:8081\"]\n"
			if tc.route != "" {
				y += "    routes: [" + tc.route + "]\n"
			}
			cfg, err := Parse("b.yaml", []byte(y))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "":
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if got := int64(cfg.Limits.RequestBufferBytes); got != tc.wantBytes {
				t.Errorf("request_buffer_bytes = %d, want %d", got, tc.wantBytes)
			}
			if got := int64(cfg.Limits.RequestBufferTotalBytes); got != tc.wantTotal {
				t.Errorf("request_buffer_total_bytes = %d, want %d", got, tc.wantTotal)
			}
			if got := int64(cfg.Limits.RequestBufferPerClientBytes); tc.wantShare != 0 && got != tc.wantShare {
				t.Errorf("request_buffer_per_client_bytes = %d, want %d", got, tc.wantShare)
			}
			if tc.wantRoute != nil {
				if got := cfg.Sites[0].Routes[0].BufferRequest; got == nil || *got != *tc.wantRoute {
					t.Errorf("buffer_request = %v, want %v", got, *tc.wantRoute)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestHealthCheckPath: unset or empty takes /healthz, "off" stays "off"
// (the app then runs no active checks), anything else must be a path.
func TestHealthCheckPath(t *testing.T) {
	tests := []struct {
		name string
		hc   string // YAML mapping of sites[0].health_check ("" = none)
		want string // the path after defaults
		err  string // error substring; "" = valid
	}{
		{name: "unset", want: "/healthz"},
		{name: "empty", hc: `{path: ""}`, want: "/healthz"},
		{name: "custom", hc: `{path: /up}`, want: "/up"},
		{name: "off", hc: `{path: off}`, want: HealthCheckOff},
		{name: "relative", hc: `{path: up}`, err: `sites[0].health_check.path: must start with / (or be "off"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := "admin: {address: off}\nsites:\n  - origins: [\"http://127.0.0.1:8081\"]\n"
			if tc.hc != "" {
				y += "    health_check: " + tc.hc + "\n"
			}
			c, err := Parse("h.yaml", []byte(y))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Sites[0].HealthCheck.Path; got != tc.want {
				t.Errorf("path %q, want %q", got, tc.want)
			}
		})
	}
}
