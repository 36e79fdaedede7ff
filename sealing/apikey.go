package sealing

import (
	"errors"
	"fmt"

	pb "github.com/tollgate/tollgate/proto"
)

// ErrNoValue is returned for an API key that carries neither a plain nor
// a sealed value.
var ErrNoValue = errors.New("the API key has no value")

// apiKeyPurpose is what a key's sealed value is bound to: its id.
func apiKeyPurpose(id string) string { return "api-key/" + id }

// SealAPIKey returns the lookup hash and sealed form of API key id's value.
func (k *Keys) SealAPIKey(id, value string) *pb.SealedKey {
	return &pb.SealedKey{Id: id, ValueLookup: k.LookupBytes(value), ValueSealed: k.Seal(value, apiKeyPurpose(id))}
}

// OpenAPIKey returns an API key's value: its plain value when it still has
// one (written before values were sealed), else its sealed value opened.
// It fails, with ErrOpen, for a sealed value that is not this key's under
// these keys.
func (k *Keys) OpenAPIKey(key *pb.ApiKey) (string, error) {
	if v := key.GetValue(); v != "" {
		return v, nil
	}
	if len(key.GetValueSealed()) == 0 {
		return "", fmt.Errorf("API key %s: %w", key.GetId(), ErrNoValue)
	}
	v, err := k.Open(key.GetValueSealed(), apiKeyPurpose(key.GetId()))
	if err != nil {
		return "", fmt.Errorf("API key %s: %w", key.GetId(), err)
	}
	return v, nil
}
