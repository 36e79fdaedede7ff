package admin

import (
	"crypto/rand"

	"github.com/google/uuid"
)

const (
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// Lengths of generated identifiers, as the original's.
const (
	planIDLen       = 6
	keyIDLen        = 10
	restAPIIDLen    = 10
	deploymentIDLen = 6
	keyValueLen     = 40
)

// randomString returns n characters drawn uniformly from alphabet
// (at most 256 characters) with crypto/rand.
func randomString(n int, alphabet string) string {
	// Reject bytes at or above the largest multiple of len(alphabet) so
	// that every character is equally likely.
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails on supported platforms
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alphabet[int(b)%len(alphabet)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func newPlanID() string       { return randomString(planIDLen, lowerAlnum) }
func newKeyID() string        { return randomString(keyIDLen, lowerAlnum) }
func newRestAPIID() string    { return randomString(restAPIIDLen, lowerAlnum) }
func newDeploymentID() string { return randomString(deploymentIDLen, lowerAlnum) }
func newKeyValue() string     { return randomString(keyValueLen, alnum) }

// newRequestID returns a random UUID (version 4) for x-amzn-RequestId.
func newRequestID() string { return uuid.NewString() }

// freshID draws ids from gen until one is not taken. The state machine
// refuses a taken id in any case; checking the current configuration first
// makes a collision answer 409 only when two creations race for the same
// random id, which is negligible.
func freshID(gen func() string, taken func(string) bool) string {
	for {
		if id := gen(); !taken(id) {
			return id
		}
	}
}
