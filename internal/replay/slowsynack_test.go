package replay

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/detect"
)

// TestRunLowRateSYNACKReflection replays the StopDDoS low-rate TCP
// reflection capture (896 packets over 818 s to 10.10.10.10: about 40
// unsolicited SYN-ACKs a minute from port 21 to port 21, SYNs to 9069/9070,
// scanner SYNs; 60 sources in all): one tcp_reflection:synack incident for
// the whole capture from the low-and-slow detector, ending at the last
// SYN-ACK, without flapping. With the detector's source threshold out of
// reach the capture gives no incident: nothing else sees it.
func TestRunLowRateSYNACKReflection(t *testing.T) {
	name := filepath.Join(sharedData, "stopddos-packet-captures/amp.TCP.syn.optionallyACK.optionallysamePort.pcapng")
	requireShared(t, name)
	first := time.Date(2021, 6, 20, 19, 42, 57, 0, time.UTC) // the capture's first and last packets (seconds)
	last := time.Date(2021, 6, 20, 19, 56, 35, 0, time.UTC)
	tests := []struct {
		name          string
		cfg           detect.Config
		wantIncidents int
	}{
		{name: "defaults", wantIncidents: 1},
		{name: "source threshold out of reach", cfg: detect.Config{Packet: detect.PacketThresholds{SlowSources: 1e6}}, wantIncidents: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := Run(context.Background(), Options{Files: []string{name}, JSON: true, Detect: tc.cfg}, &out)
			if err != nil {
				t.Fatal(err)
			}
			lines := parseJSONLines(t, out.Bytes())
			if len(lines) != tc.wantIncidents || len(sum.Incidents) != tc.wantIncidents {
				t.Fatalf("%d JSON lines, %d incidents; want %d:\n%s", len(lines), len(sum.Incidents), tc.wantIncidents, out.String())
			}
			if tc.wantIncidents == 0 {
				return
			}
			j := lines[0]
			if j.Site != "10.10.10.10" || !slices.Equal(j.Vectors, []string{"tcp_reflection:synack"}) {
				t.Errorf("site %s vectors %v, want 10.10.10.10 with tcp_reflection:synack only", j.Site, j.Vectors)
			}
			// Confirmed once 20 SYN-ACKs from 10 sources fall in one minute:
			// within the first three minutes of the capture.
			if j.Start.Before(first) || j.Detected.After(first.Add(3*time.Minute)) || j.Detected.Before(j.Start) {
				t.Errorf("start %v detected %v, want within 3 min of %v", j.Start, j.Detected, first)
			}
			if j.End == nil || j.End.Before(last.Add(-5*time.Second)) || j.End.After(last.Add(2*time.Second)) {
				t.Errorf("end %v, want the last SYN-ACK about %v", j.End, last)
			}
			if j.Sources < 30 || j.Packets < 500 {
				t.Errorf("sources %d packets %d, want most of the capture's 60 sources and 896 packets", j.Sources, j.Packets)
			}
			resumed := 0
			for _, ev := range sum.Incidents[0].Timeline {
				if strings.HasPrefix(ev.Message, "attack resumed") {
					resumed++
				}
			}
			if resumed > 2 {
				t.Errorf("attack resumed %d times: the incident flaps", resumed)
			}
		})
	}
}
