package mongostore

import "time"

// AssumeMongoDB makes the store take the paths it takes on MongoDB, so that
// tests against FerretDB (which answers those filters, only slower) cover
// them too.
func (s *Store) AssumeMongoDB() {
	s.ferretMu.Lock()
	defer s.ferretMu.Unlock()
	s.ferretKnown, s.ferret = true, false
}

// WaitingOnMarks is u waiting up to d (not markWait) on a fresh delete mark.
func (u *UsableMedia) WaitingOnMarks(d time.Duration) *UsableMedia {
	return &UsableMedia{m: u.m, markWait: d}
}
