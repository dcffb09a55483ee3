package devstack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secret returns the development secret stored in DataDir under name, or
// makes one of n random bytes, stores it (mode 0600) and reports it as
// generated. Keeping it in the data folder matters: tokens encrypted by one
// `postflow dev` must decrypt in the next.
func Secret(dataDir, name string, n int) (value string, generated bool, err error) {
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("devstack: read %s: %w", path, err)
	}
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("devstack: generate %s: %w", name, err)
	}
	value = base64.StdEncoding.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("devstack: data folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("devstack: write %s: %w", path, err)
	}
	return value, true, nil
}
