package ws

// BatchesMade is how many batches the writers' pool has made so far.
func BatchesMade() int64 { return batchesMade.Load() }

// NewBatch makes one batch the way the pool does on a miss.
func NewBatch() any { return batches.New() }
