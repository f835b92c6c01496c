package check

import (
	"context"
	"testing"
	"time"

	"github.com/sonde-exporter/sonde/prober/taxonomy"
)

func TestSlotsRun(t *testing.T) {
	failed := taxonomy.Failf(taxonomy.ClassAssertion, taxonomy.ReasonBodyRegex, taxonomy.PhaseValidate, "no match")
	for _, tc := range []struct {
		name  string
		slots Slots
		check func() *taxonomy.Error
		class taxonomy.Class
	}{
		{"passes", NewSlots(), func() *taxonomy.Error { return nil }, ""},
		{"fails", NewSlots(), func() *taxonomy.Error { return failed }, taxonomy.ClassAssertion},
		{"panics", NewSlots(), func() *taxonomy.Error { panic("boom") }, taxonomy.ClassProber},
		{"nil slots bound nothing", nil, func() *taxonomy.Error { return nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.slots.Run(context.Background(), taxonomy.PhaseValidate, "the check", tc.check)
			if tc.class == "" {
				if err != nil {
					t.Fatalf("Run = %v, want success", err)
				}
				return
			}
			if err == nil || err.Class != tc.class {
				t.Fatalf("Run = %v, want class %s", err, tc.class)
			}
		})
	}
}

// A check that outlives the probe's deadline fails the probe as a timeout,
// and holds its slot until it ends: a second check waits for it.
func TestSlotsRunPastTheDeadline(t *testing.T) {
	slots := make(Slots, 1)
	release := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := slots.Run(ctx, taxonomy.PhaseValidate, "the slow check", func() *taxonomy.Error {
		<-release
		return nil
	})
	if err == nil || err.Class != taxonomy.ClassTimeout {
		t.Fatalf("Run = %v, want a timeout", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err = slots.Run(ctx2, taxonomy.PhaseValidate, "the next check", func() *taxonomy.Error { return nil })
	if err == nil || err.Class != taxonomy.ClassTimeout {
		t.Fatalf("Run while the slot is held = %v, want a timeout", err)
	}
	close(release)
}
