package db_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/confab/confab/app/bench/seed"
	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/db"
)

// BenchmarkSearchScale measures message search on a file written by
// `confab bench seed` (docs/performance.md, "Message search at scale"),
// opened as the server opens it: CONFAB_SEARCH_DB names the file (the
// million messages of the figures there); without it, the benchmark
// seeds a smaller one of its own (100,000 messages) first. One op is one
// round of seven questions asked by a heavy user (seed_1, in a fifth of the
// conversations), a user in a tenth of that (seed_3) and an ordinary one
// (seed_77); p50-ms and p99-ms are over every search of the run, and -v
// logs each question's. `-benchtime 50x` is 50 searches of each.
func BenchmarkSearchScale(b *testing.B) {
	path := os.Getenv("CONFAB_SEARCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "search.db")
		cfg := seed.Config{Path: path, Users: 2000, Conversations: 1000, Messages: 100_000, Seed: 1, PasswordCost: 4}
		if _, err := seed.Write(context.Background(), cfg); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	// A sub-benchmark, so that the file is seeded once however many
	// times the measurement runs.
	b.Run("questions", func(b *testing.B) { benchSearch(b, path) })
}

func benchSearch(b *testing.B, path string) {
	ctx := context.Background()
	s, err := db.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	queries := []string{"coffee", "coffee tomorrow", "cof", "te", "deploy bug fix", "weekend plan te", "zzz"}
	viewers := []int64{1, 3, 77}
	type question struct {
		viewer int64
		q      string
	}
	took := map[question][]time.Duration{}
	found := map[question]int{}
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		for _, viewer := range viewers {
			for _, q := range queries {
				start := time.Now()
				page, err := s.SearchMessages(ctx, chat.SearchQuery{Viewer: viewer, Terms: chat.SearchTerms(q), Limit: chat.DefaultSearchPageSize + 1})
				d := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				k := question{viewer, q}
				took[k] = append(took[k], d)
				found[k] = len(page.Hits)
				all = append(all, d)
			}
		}
	}
	b.StopTimer()
	for _, viewer := range viewers {
		for _, q := range queries {
			k := question{viewer, q}
			d := took[k]
			slices.Sort(d)
			b.Logf("seed_%d %-18q %2d hits  p50 %6.2f ms  p99 %6.2f ms", viewer, q, found[k], ms(pct(d, 50)), ms(pct(d, 99)))
		}
	}
	slices.Sort(all)
	b.ReportMetric(ms(pct(all, 50)), "p50-ms")
	b.ReportMetric(ms(pct(all, 99)), "p99-ms")
}

// pct is the p-th percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration { return d[len(d)*p/100] }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
