package config_test

import (
	"strings"
	"testing"

	"github.com/confab/confab/app/config"
)

// The profiler exposes the process's internals: it may only listen on
// loopback.
func TestPprofAddrMustBeLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true,
		"localhost:6060": true,
		"[::1]:6060":     true,
		"0.0.0.0:6060":   false,
		":6060":          false,
		"10.0.0.5:6060":  false,
		"127.0.0.1":      false,
	} {
		cfg, err := config.Load(func(k string) string {
			if k == "PPROF_ADDR" {
				return addr
			}
			return ""
		})
		switch {
		case ok && (err != nil || cfg.PprofAddr != addr):
			t.Errorf("PPROF_ADDR=%s: %v, %q", addr, err, cfg.PprofAddr)
		case !ok && (err == nil || !strings.Contains(err.Error(), "PPROF_ADDR")):
			t.Errorf("PPROF_ADDR=%s accepted (err %v)", addr, err)
		}
	}
}
