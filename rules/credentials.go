package rules

import (
	"strings"
	"unicode/utf8"
)

// Admin credential roles.
const (
	RoleAdmin    = "admin"     // every route, credential management included
	RoleReadOnly = "read-only" // GET and HEAD only
)

// Limits of an admin credential.
const (
	MinCredentialIDLen     = 16 // an AWS access key id's bounds
	MaxCredentialIDLen     = 128
	MinCredentialSecretLen = 20
	MaxCredentialSecretLen = 128
	MaxCredentialNameLen   = 128
	MaxActorLen            = 256
)

// CredentialID checks an admin credential's access key id: 16 to 128
// upper-case letters and digits, as an AWS access key id ("TGAK" and 16
// base32 characters when Tollgate makes it).
func CredentialID(id string) error {
	if len(id) < MinCredentialIDLen || len(id) > MaxCredentialIDLen || !isUpperAlnum(id) {
		return Errorf("Invalid access key id %q: it must have %d to %d upper-case letters and digits", Truncate(id), MinCredentialIDLen, MaxCredentialIDLen)
	}
	return nil
}

// CredentialSecret checks an admin credential's secret: 20 to 128 printable
// ASCII characters without spaces (40 letters and digits when Tollgate
// makes it).
func CredentialSecret(s string) error {
	if len(s) < MinCredentialSecretLen || len(s) > MaxCredentialSecretLen {
		return Errorf("A secret access key must have %d to %d characters", MinCredentialSecretLen, MaxCredentialSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return Errorf("A secret access key must be printable ASCII without spaces")
		}
	}
	return nil
}

// CredentialName checks an admin credential's name (optional).
func CredentialName(n string) error {
	if utf8.RuneCountInString(n) > MaxCredentialNameLen || HasControl(n) || !utf8.ValidString(n) {
		return Errorf("A credential name must have at most %d characters and no control characters", MaxCredentialNameLen)
	}
	return nil
}

// Role checks an admin credential's role.
func Role(r string) error {
	if r != RoleAdmin && r != RoleReadOnly {
		return Errorf("Invalid role %q: want %s or %s", Truncate(r), RoleAdmin, RoleReadOnly)
	}
	return nil
}

// Actor checks the actor a command names: an admin credential id,
// "node:<id>" or "anonymous" (empty: a command from before actors).
func Actor(a string) error {
	if len(a) > MaxActorLen || HasControl(a) || strings.ContainsAny(a, " \"") {
		return Errorf("Invalid actor %q", Truncate(a))
	}
	return nil
}

func isUpperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
