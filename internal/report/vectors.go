package report

import (
	"strconv"
	"strings"
)

// capec is one entry of MITRE's Common Attack Pattern Enumeration and
// Classification (https://capec.mitre.org).
type capec struct {
	ID   int
	Name string
}

// Ref returns "CAPEC-<id>".
func (c capec) Ref() string { return "CAPEC-" + strconv.Itoa(c.ID) }

// URL returns the entry's page on capec.mitre.org.
func (c capec) URL() string {
	return "https://capec.mitre.org/data/definitions/" + strconv.Itoa(c.ID) + ".html"
}

// The CAPEC entries DDoS vectors map to.
var (
	capecFlooding      = capec{125, "Flooding"}
	capecHTTPDoS       = capec{469, "HTTP DoS"}
	capecTCPFlood      = capec{482, "TCP Flood"}
	capecUDPFlood      = capec{486, "UDP Flood"}
	capecICMPFlood     = capec{487, "ICMP Flood"}
	capecAmplification = capec{490, "Amplification"}
	capecCredStuffing  = capec{600, "Credential Stuffing"}
)

// vector is one attack vector as the report explains it.
type vector struct {
	// Name is the detector's vector name ("syn_flood",
	// "udp_amplification:snmp").
	Name string
	// Plain explains it to a non-specialist.
	Plain string
	// CAPEC is the attack pattern; Attack is false for a vector that is
	// not an attack (a flash crowd).
	CAPEC  capec
	Attack bool
	// Reflected: the sources are reflectors (abused third-party servers);
	// Packet: a network-level vector (sources may be spoofed).
	Reflected, Packet bool
}

// describe maps a detector vector name to its explanation and CAPEC entry.
func describe(name string) vector {
	base, arg, _ := strings.Cut(name, ":")
	v := vector{Name: name, CAPEC: capecFlooding, Attack: true}
	switch base {
	case "http_flood":
		v.Plain, v.CAPEC = "a flood of web requests far above the site's normal rate", capecHTTPDoS
	case "distributed_flood":
		v.Plain, v.CAPEC = "a flood of web requests spread over many sources, each sending a little (a botnet)", capecHTTPDoS
	case "concentrated_flood":
		v.Plain, v.CAPEC = "a flood of web requests from a few heavy sources", capecHTTPDoS
	case "cache_busting":
		v.Plain, v.CAPEC = "web requests with random query strings, made to bypass caches and reach the origin server", capecHTTPDoS
	case "http2_rapid_reset":
		v.Plain, v.CAPEC = "HTTP/2 streams opened and cancelled at once (Rapid Reset, CVE-2023-44487)", capecHTTPDoS
	case "expensive_route":
		v.Plain, v.CAPEC = "repeated requests to a costly page ("+arg+") to exhaust the server", capecHTTPDoS
	case "credential_stuffing":
		v.Plain, v.CAPEC = "mass login attempts with stolen passwords on "+arg, capecCredStuffing
	case "origin_distress":
		v.Plain = "the origin server failing or slowing down under load"
	case "flash_crowd":
		v.Plain, v.Attack = "a surge of legitimate visitors (not an attack)", false
	case "syn_flood":
		v.Plain, v.CAPEC, v.Packet = "a flood of TCP connection requests (SYN packets) to exhaust connection slots", capecTCPFlood, true
	case "ack_flood":
		v.Plain, v.CAPEC, v.Packet = "a flood of TCP ACK packets", capecTCPFlood, true
	case "rst_flood":
		v.Plain, v.CAPEC, v.Packet = "a flood of TCP RST packets", capecTCPFlood, true
	case "udp_flood":
		v.Plain, v.CAPEC, v.Packet = "a flood of UDP packets to saturate the network link", capecUDPFlood, true
	case "icmp_flood":
		v.Plain, v.CAPEC, v.Packet = "a flood of ICMP (ping) packets", capecICMPFlood, true
	case "udp_amplification":
		v.Plain = "replies from " + strings.ToUpper(arg) + " servers the attacker tricked into sending large answers to us (reflection/amplification)"
		v.CAPEC, v.Packet, v.Reflected = capecAmplification, true, true
	case "tcp_reflection":
		v.Plain = "TCP SYN-ACK replies from servers the attacker tricked into answering us (reflection)"
		v.CAPEC, v.Packet, v.Reflected = capecAmplification, true, true
	default:
		v.Plain = "a flood of traffic (" + name + ")"
	}
	return v
}
