package app

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/internal/filter"
	"github.com/portcullis/portcullis/internal/proxy"
)

type proxyOrigin = proxy.Origin

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return uint64(m.Counter.GetValue())
}

func actionName(a int) string { return filter.Action(a).String() }
