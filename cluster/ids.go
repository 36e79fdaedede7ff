package cluster

import (
	"crypto/rand"
	"encoding/hex"
)

// newRequestID returns a random 128-bit id for de-duplicating commands.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
