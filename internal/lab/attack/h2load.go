package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// h2loadRound is how long each h2load process runs before the next
	// round starts with new sources (h2load sets one header set per run).
	h2loadRound = time.Second
	// h2loadParallel is the most h2load processes run at once, each with
	// its own source.
	h2loadParallel = 4
	// h2loadStreams is h2load's -m, concurrent streams per connection.
	h2loadStreams = 10
)

// runH2load drives an HTTP/2 (h2c, prior knowledge) flood with h2load,
// unpaced. With X-Forwarded-For it runs rounds of h2loadRound; each round
// runs up to h2loadParallel processes at once, each claiming the next source
// (-H), splitting Connections between them. Under ProxyProtocol one process
// per round goes through the PROXY relay (one source per connection).
// h2load prints nothing when interrupted, so a round cut short by ctx
// loses its counts (at most one round's).
func runH2load(ctx context.Context, j *job, d time.Duration) (Result, error) {
	end := time.Now().Add(d)
	var total Result
	next := 0
	for round := 0; ctx.Err() == nil; round++ {
		left := time.Until(end)
		if left < 100*time.Millisecond {
			break
		}
		length := min(left, h2loadRound)
		if left-length < h2loadRound/2 {
			length = left // no runt round at the end
		}
		r, err := h2loadRoundRun(ctx, j, length, &next)
		total.add(r)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// h2loadRoundRun runs one round of parallel h2load processes for d.
func h2loadRoundRun(ctx context.Context, j *job, d time.Duration, next *int) (Result, error) {
	procs := min(h2loadParallel, j.spec.Connections, max(1, len(j.xff)))
	if j.target.ProxyProtocol {
		procs = 1
	}
	base := "http://" + j.addr
	var rl *relay
	if j.target.ProxyProtocol {
		var err error
		if rl, err = startRelay(j, relayProxy, false, false); err != nil {
			return Result{}, err
		}
		base = "http://" + rl.addr()
	}
	results := make([]Result, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for p := range procs {
		clients := j.spec.Connections / procs
		if p < j.spec.Connections%procs {
			clients++
		}
		args := []string{
			"-c", strconv.Itoa(clients), "-m", strconv.Itoa(h2loadStreams),
			"-D", strconv.FormatInt(d.Milliseconds(), 10) + "ms",
			"-H", strings.ToLower(ClassHeader) + ": " + j.marker,
			"-H", "user-agent: " + userAgents[p%len(userAgents)],
			"-H", ":authority: " + j.target.URL.Host, // not the relay's address
		}
		if !j.target.ProxyProtocol && len(j.xff) > 0 {
			args = append(args, "-H", "x-forwarded-for: "+j.xff[*next%len(j.xff)])
			*next++
		}
		if j.spec.Method == "HEAD" {
			args = append(args, "-H", ":method: HEAD")
		}
		for _, path := range j.spec.Paths {
			args = append(args, base+path)
		}
		wg.Go(func() {
			out, err := runTool(ctx, d+3*time.Second, "h2load", args...)
			if err != nil && ctx.Err() == nil {
				errs[p] = err
				return
			}
			results[p], errs[p] = parseH2load(out)
		})
	}
	wg.Wait()
	var total Result
	for _, r := range results {
		total.add(r)
	}
	if rl != nil {
		total.Connections = rl.close().accepted
	}
	if ctx.Err() != nil {
		return total, nil
	}
	return total, errors.Join(errs...)
}

// parseH2load reads h2load's summary:
//
//	spawning thread #0: 4 total client(s). ...
//	Application protocol: h2c
//	requests: 1918 total, 1958 started, 1918 done, 1727 succeeded, 191 failed, 0 errored, 0 timeout
//	status codes: 1727 2xx, 0 3xx, 191 4xx, 0 5xx
//
// Sent is "started"; Errors is errored + timeout; status classes are
// recorded as 200, 300, 400 and 500. Connections is the clients spawned;
// when no client ever connected (no "Application protocol" line and nothing
// started) they count as errors instead.
func parseH2load(out []byte) (Result, error) {
	var res Result
	var clients uint64
	var sawRequests, sawProtocol bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(t, "spawning thread #"):
			_, rest, _ := strings.Cut(t, ": ")
			if f := strings.Fields(rest); len(f) >= 2 && f[1] == "total" {
				n, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					return Result{}, fmt.Errorf("attack: h2load: %q: %w", t, err)
				}
				clients += n
			}
		case strings.HasPrefix(t, "Application protocol:"):
			sawProtocol = true
		case strings.HasPrefix(t, "requests:"):
			m, err := countsByLabel(strings.TrimPrefix(t, "requests:"))
			if err != nil {
				return Result{}, fmt.Errorf("attack: h2load: %q: %w", t, err)
			}
			res.Sent = m["started"]
			res.Errors = m["errored"] + m["timeout"]
			sawRequests = true
		case strings.HasPrefix(t, "status codes:"):
			m, err := countsByLabel(strings.TrimPrefix(t, "status codes:"))
			if err != nil {
				return Result{}, fmt.Errorf("attack: h2load: %q: %w", t, err)
			}
			for class, code := range map[string]int{"2xx": 200, "3xx": 300, "4xx": 400, "5xx": 500} {
				if n := m[class]; n > 0 {
					if res.Statuses == nil {
						res.Statuses = make(map[int]uint64)
					}
					res.Statuses[code] += n
				}
			}
		}
	}
	if !sawRequests {
		return Result{}, fmt.Errorf("attack: h2load: no summary in output: %q", lastLines(out, 5))
	}
	if !sawProtocol && res.Sent == 0 {
		res.Errors += clients
	} else {
		res.Connections = clients
	}
	return res, nil
}

// countsByLabel parses "N label, M label2, ..." into label → count.
func countsByLabel(s string) (map[string]uint64, error) {
	m := make(map[string]uint64)
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("bad count %q", part)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad count %q: %w", part, err)
		}
		m[f[1]] = n
	}
	return m, nil
}
