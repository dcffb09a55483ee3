package mongostore

// AssumeMongoDB makes the store take the paths it takes on MongoDB, so that
// tests against FerretDB (which answers those filters, only slower) cover
// them too.
func (s *Store) AssumeMongoDB() {
	s.ferretMu.Lock()
	defer s.ferretMu.Unlock()
	s.ferretKnown, s.ferret = true, false
}
