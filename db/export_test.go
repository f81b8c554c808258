package db

// HoldSearchIndexer stops s's background search indexer (until Close),
// so that only searches move the index: for benchmarks that measure the
// send path without the indexing that follows it.
func HoldSearchIndexer(s *Store) { s.stopSearchIndexer() }
