// Package replay reads recorded traffic — web server access logs and packet
// captures — into the accounting events of package stats, on the records' own
// timestamps, so that the live detection engine can be run over them
// ("portcullis replay FILE").
//
// Readers:
//
//   - LogReader: Apache/nginx Common and Combined Log Format
//     (https://httpd.apache.org/docs/2.4/logs.html#common) and JSON lines
//     (nginx, Caddy, Traefik style keys), auto-detected from the first lines,
//     parsed by a hand-written tokenizer into stats.Request.
//   - PcapReader: libpcap and pcapng captures (sniffed from the magic
//     number; gopacket/pcapgo, no cgo), decoded with a reused
//     gopacket.DecodingLayerParser into stats.Packet, plus a stats.Request for
//     every TCP payload that begins an HTTP/1.x request.
//
// Both readers fill caller-owned values and reuse their buffers: strings in a
// filled stats.Request alias the reader's buffer and are valid only until the
// next call to Next. Malformed lines and packets are counted and the first
// ones kept with their line or packet number (see Malformed); they never stop
// a read.
//
// Run replays files as a two-stage pipeline (stage.go): a reader goroutine
// parses each file into batches of records, copying their strings into a
// per-batch arena, and the calling goroutine feeds the batches in order to
// a detect.Pipeline. The batches are recycled through a free list of four,
// so memory stays bounded and reading runs at most a few thousand records
// ahead of detection.
package replay
