package chat

// QueuedSends is how many senders wait for s's writer to take their
// message: for tests that fill the queue in front of the group commit.
func QueuedSends(s *Service) int64 { return s.queued.Load() }
