package incident_test

import (
	"testing"

	"github.com/portcullis/portcullis/internal/incident"
	"github.com/portcullis/portcullis/internal/incident/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) incident.Backend { return incident.NewMemoryStore() })
}
