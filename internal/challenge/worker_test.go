package challenge

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWorkerAgreesWithVerifier runs the browser's proof-of-work code
// (assets/worker.js) under Node.js, when installed, and checks that every
// nonce it finds is accepted by the Go verifier and is the smallest one —
// so the JavaScript SHA-256 and the stride logic match the server.
func TestWorkerAgreesWithVerifier(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	worker, _ := filepath.Abs("assets/worker.js")
	tests := []struct {
		name        string
		seed        string
		bits        int
		start, step int
	}{
		{name: "bits 8", seed: "00000000000000000000000000000000", bits: 8, start: 0, step: 1},
		{name: "bits 12", seed: "0123456789abcdef0123456789abcdef", bits: 12, start: 0, step: 1},
		{name: "bits 14, second of three workers", seed: "fedcba9876543210fedcba9876543210", bits: 14, start: 1, step: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := `const w = require(process.argv[1]); console.log(w.solve(process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5], null));`
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, node, "-e", script, worker, tt.seed, itoa(int64(tt.bits)), itoa(int64(tt.start)), itoa(int64(tt.step))).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			nonce := strings.TrimSpace(string(out))
			var id [16]byte
			for i := range id {
				id[i] = unhex(tt.seed[2*i])<<4 | unhex(tt.seed[2*i+1])
			}
			if !checkWork(&id, nonce, tt.bits) {
				t.Fatalf("worker nonce %q rejected by checkWork", nonce)
			}
			// No smaller nonce of this worker's stride solves it.
			for n := tt.start; itoa(int64(n)) != nonce; n += tt.step {
				if checkWork(&id, itoa(int64(n)), tt.bits) {
					t.Fatalf("worker skipped solution %d, returned %s", n, nonce)
				}
			}
		})
	}
}

// TestScriptsParse checks that both scripts are valid JavaScript.
func TestScriptsParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	for _, f := range []string{"assets/challenge.js", "assets/worker.js"} {
		t.Run(f, func(t *testing.T) {
			if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestPageScript drives assets/challenge.js under Node.js with a minimal
// DOM (testdata/page_harness.js): it submits a nonce the Go verifier
// accepts, announces progress as text, and on every failure — Worker
// construction refused, worker error, worker silent past the 10-second
// watchdog, cookies off — says so and reveals the fallback (HANDED F27
// step 2) instead of spinning for ever.
func TestPageScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	worker, _ := filepath.Abs("assets/worker.js")
	page, _ := filepath.Abs("assets/challenge.js")
	const seed = "00112233445566778899aabbccddeeff"
	tests := []struct {
		mode       string
		wantSubmit bool
		wantText   string
	}{
		{mode: "ok", wantSubmit: true, wantText: "done"},
		{mode: "throws", wantText: "error"},
		{mode: "workererror", wantText: "error"},
		{mode: "silent", wantText: "error"},
		{mode: "nocookies", wantText: "cookies"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			out, err := exec.Command(node, "testdata/page_harness.js", worker, page, seed, "10", tt.mode).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var got struct {
				Submitted *string
				Texts     []string
				Late      string
				Root      string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !strings.Contains(got.Root, "pc-js") {
				t.Error("script did not mark the page as scripted")
			}
			if len(got.Texts) == 0 || got.Texts[len(got.Texts)-1] != tt.wantText {
				t.Errorf("announcements %q, want last %q", got.Texts, tt.wantText)
			}
			if (got.Submitted != nil) != tt.wantSubmit {
				t.Fatalf("submitted %v, want %v", got.Submitted, tt.wantSubmit)
			}
			if tt.wantSubmit {
				var id [16]byte
				for i := range id {
					id[i] = unhex(seed[2*i])<<4 | unhex(seed[2*i+1])
				}
				if !checkWork(&id, *got.Submitted, 10) {
					t.Errorf("submitted nonce %q does not verify", *got.Submitted)
				}
				return
			}
			if !strings.Contains(got.Late, "pc-show") {
				t.Error("fallback (retry link, no-JS button) not revealed")
			}
		})
	}
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
