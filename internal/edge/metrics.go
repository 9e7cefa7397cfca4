package edge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Buffer stores (label values of the request-buffer metrics).
const (
	storeMemory = "memory"
	storeDisk   = "disk"
)

// bufferMetrics are the request buffer's Prometheus metrics:
//
//   - portcullis_edge_request_buffer_bytes_total{store}: body bytes read
//     whole at the edge, kept in memory or spooled to disk;
//   - portcullis_edge_request_buffer_refused_total{store}: bodies answered
//     503 because that budget stayed full for the whole wait;
//   - portcullis_edge_request_buffer_in_use_bytes{store}: bytes reserved
//     now (memory in whole chunks), read at scrape time;
//   - portcullis_edge_request_buffer_client_refused_total: bodies answered
//     429 because their client address's or network's share (of the
//     memory or of the spool) stayed full;
//   - portcullis_edge_request_buffer_clients: client addresses holding
//     buffer memory now (the per-client table's size), read at scrape time.
type bufferMetrics struct {
	bytes        [2]prometheus.Counter // memory, disk
	refused      [2]prometheus.Counter
	shareRefused prometheus.Counter
}

func newBufferMetrics(reg prometheus.Registerer, b *BodyBuffer) (*bufferMetrics, error) {
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_edge_request_buffer_bytes_total",
		Help: "Request body bytes read whole at the edge before forwarding, by store (memory, disk)."}, []string{"store"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_edge_request_buffer_refused_total",
		Help: "Request bodies answered 503 because the request buffer stayed full, by store (memory, disk)."}, []string{"store"})
	const inUseHelp = "Bytes reserved now by request bodies being buffered, by store (memory in whole chunks, disk)."
	inUse := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_edge_request_buffer_in_use_bytes",
		Help: inUseHelp, ConstLabels: prometheus.Labels{"store": storeMemory}},
		func() float64 { m, _ := b.InUse(); return float64(m) })
	inUseDisk := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_edge_request_buffer_in_use_bytes",
		Help: inUseHelp, ConstLabels: prometheus.Labels{"store": storeDisk}},
		func() float64 { _, d := b.InUse(); return float64(d) })
	shareRefused := prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_edge_request_buffer_client_refused_total",
		Help: "Request bodies answered 429 because their client address or its network (aggregate prefix) already held its share of the request buffer (memory or spool)."})
	clients := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_edge_request_buffer_clients",
		Help: "Client addresses holding request buffer memory now."},
		func() float64 { return float64(b.Clients()) })
	for _, c := range []prometheus.Collector{bytes, refused, inUse, inUseDisk, shareRefused, clients} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: metrics: %w", err)
		}
	}
	m := &bufferMetrics{shareRefused: shareRefused}
	for i, s := range []string{storeMemory, storeDisk} {
		m.bytes[i] = bytes.WithLabelValues(s)
		m.refused[i] = refused.WithLabelValues(s)
	}
	return m, nil
}

func storeIndex(disk bool) int {
	if disk {
		return 1
	}
	return 0
}

// buffered counts a body of n bytes read whole (nil-safe).
func (m *bufferMetrics) buffered(n int64, disk bool) {
	if m != nil && n > 0 {
		m.bytes[storeIndex(disk)].Add(float64(n))
	}
}

// refuse counts a body refused for want of room (nil-safe).
func (m *bufferMetrics) refuse(disk bool) {
	if m != nil {
		m.refused[storeIndex(disk)].Inc()
	}
}

// refuseShare counts a body refused for its client's share (nil-safe).
func (m *bufferMetrics) refuseShare() {
	if m != nil {
		m.shareRefused.Inc()
	}
}
