package incident_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/incident/storetest"
)

const (
	crashDirEnv   = "PORTCULLIS_INCIDENT_CRASH_DIR"
	crashRoundEnv = "PORTCULLIS_INCIDENT_CRASH_ROUND"
)

// TestCrashChild is the child process of TestCrashKill9: it writes to the
// store as fast as it can and prints "ACK ..." after every write call
// returns, until it is killed. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKill9")
	}
	round := os.Getenv(crashRoundEnv)
	ctx := context.Background()
	s, err := incident.Open(dir)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ack := func(format string, a ...any) { fmt.Printf("ACK "+format+"\n", a...) }
	fail := func(err error) {
		fmt.Println("ERR", err)
		os.Exit(2)
	}

	// A whole incident, opened and closed.
	closedID := "closed-" + round
	in := storetest.Sample(closedID, "www", time.Hour)
	if err := s.Create(ctx, in); err != nil {
		fail(err)
	}
	in.End = in.Start.Add(time.Minute)
	in.Timeline = append(in.Timeline, incident.Event{Time: in.End, Kind: "state", From: incident.StateRecovering, To: incident.StateNormal, Message: "recovered"})
	if err := s.CloseIncident(ctx, in); err != nil {
		fail(err)
	}
	ack("closed %s", closedID)

	// The open incident every round writes to (created in round 0).
	open := storetest.Sample("open", "www", 0)
	if err := s.Create(ctx, open); err != nil && round == "0" {
		fail(err)
	}
	for i := 0; ; i++ {
		e := incident.Event{Time: storetest.T0.Add(time.Duration(i) * time.Millisecond), Kind: "note", Message: fmt.Sprintf("r%s-%d", round, i)}
		if err := s.AppendEvent(ctx, "open", e); err != nil {
			fail(err)
		}
		ack("event r%s-%d", round, i)
		if i%10 == 9 {
			open.PeakRPS = float64(i)
			open.Timeline = append(open.Timeline[:2], incident.Event{Time: storetest.T0, Kind: "vector", Message: fmt.Sprintf("update r%s-%d", round, i)})
			if err := s.Update(ctx, open); err != nil {
				fail(err)
			}
			ack("update r%s-%d", round, i)
		}
	}
}

// TestCrashKill9 kills a writing child process with SIGKILL, three times,
// and checks after each that the store opens, passes SQLite's integrity
// check, and holds every incident and timeline entry the child had been
// told was stored (HANDED: the incident issue's crash requirement).
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	ctx := context.Background()
	acked := map[string]bool{}
	var closedIDs []string
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		events, killed := 0, false
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERR") {
				t.Fatalf("round %d child: %s", round, line)
			}
			what, ok := strings.CutPrefix(line, "ACK ")
			if !ok {
				continue
			}
			acked[what] = true
			if id, ok := strings.CutPrefix(what, "closed "); ok {
				closedIDs = append(closedIDs, id)
			}
			if strings.HasPrefix(what, "event ") {
				events++
			}
			// Kill mid-stream, at a different point each round; keep
			// reading: acks already printed still count.
			if !killed && events >= 50+37*round {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited before it was killed: %v", round, err)
		}

		s, err := incident.Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, id := range closedIDs {
			in, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("round %d: acknowledged closed incident %s: %v", round, id, err)
			}
			if in.Open() || len(in.Timeline) != 3 {
				t.Errorf("round %d: closed incident %s: open=%v, %d events; want closed with 3", round, id, in.Open(), len(in.Timeline))
			}
		}
		open, err := s.Get(ctx, "open")
		if err != nil {
			t.Fatalf("round %d: open incident: %v", round, err)
		}
		have := map[string]bool{}
		for _, e := range open.Timeline {
			have[e.Message] = true
		}
		missing := 0
		for what := range acked {
			switch {
			case strings.HasPrefix(what, "event "):
				if !have[strings.TrimPrefix(what, "event ")] {
					missing++
					t.Errorf("round %d: acknowledged %s lost", round, what)
				}
			case strings.HasPrefix(what, "update "):
				if !have[what] {
					missing++
					t.Errorf("round %d: acknowledged %s lost", round, what)
				}
			}
		}
		if !open.Open() {
			t.Errorf("round %d: the open incident is closed", round)
		}
		t.Logf("round %d: %d acknowledged writes, all present; killed after %d events", round, len(acked), events)
		s.Close()
		if missing > 0 {
			t.FailNow()
		}
	}
}
