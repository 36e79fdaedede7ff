package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// KeySize is the size of the data key and of a key-encryption key.
const KeySize = 32

// LookupSize is the size of a lookup hash.
const LookupSize = sha256.Size

// maxLookupInput bounds what Lookup hashes without allocating: longer
// inputs cannot be key values or secrets (rules.KeyValue allows 128).
const maxLookupInput = 256

// ErrOpen is returned for a sealed value that does not open under the key:
// a wrong key, or bytes that were changed.
var ErrOpen = errors.New("sealed value does not open under this key")

// Keys are the keys derived from one data key. Safe for concurrent use.
type Keys struct {
	check  []byte
	lookup sync.Pool // *lookupHash
	aead   cipher.AEAD
}

type lookupHash struct {
	h   hash.Hash
	buf [maxLookupInput]byte
	out [LookupSize]byte
}

// NewDataKey returns a fresh random data key.
func NewDataKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("sealing: no randomness: " + err.Error()) // crypto/rand never fails on supported systems
	}
	return k
}

// Derive returns the keys derived from a data key.
func Derive(dataKey []byte) (*Keys, error) {
	if len(dataKey) != KeySize {
		return nil, fmt.Errorf("data key: want %d bytes, got %d", KeySize, len(dataKey))
	}
	lk, err := hkdf.Key(sha256.New, dataKey, nil, "tollgate lookup", KeySize)
	if err != nil {
		return nil, err
	}
	sk, err := hkdf.Key(sha256.New, dataKey, nil, "tollgate seal", KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(sk)
	if err != nil {
		return nil, err
	}
	k := &Keys{check: Check(dataKey), aead: aead}
	k.lookup.New = func() any { return &lookupHash{h: hmac.New(sha256.New, lk)} }
	return k, nil
}

// Check is the check value of a data key: it tells that an unwrapped key
// is the cluster's, and that two wrappings hold the same key, without
// revealing it.
func Check(dataKey []byte) []byte {
	m := hmac.New(sha256.New, dataKey)
	m.Write([]byte("tollgate data key check"))
	return m.Sum(nil)
}

// CheckValue is the check value of the data key these keys come from.
func (k *Keys) CheckValue() []byte { return k.check }

// Lookup returns HMAC-SHA-256 of s under the lookup key. It does not
// allocate; ok is false for an input longer than any value can be.
func (k *Keys) Lookup(s string) (sum [LookupSize]byte, ok bool) {
	if len(s) > maxLookupInput {
		return sum, false
	}
	l := k.lookup.Get().(*lookupHash)
	n := copy(l.buf[:], s)
	l.h.Reset()
	l.h.Write(l.buf[:n])
	l.h.Sum(l.out[:0])
	sum = l.out
	k.lookup.Put(l)
	return sum, true
}

// LookupBytes is Lookup as a slice, for storing.
func (k *Keys) LookupBytes(s string) []byte {
	sum, ok := k.Lookup(s)
	if !ok {
		return nil
	}
	return sum[:]
}

// Seal encrypts a value. The purpose (such as "api-key/<id>") is
// authenticated with it, so a sealed value copied onto another object
// does not open.
func (k *Keys) Seal(value, purpose string) []byte {
	return seal(k.aead, []byte(value), purpose)
}

// Open decrypts what Seal returned for the same purpose.
func (k *Keys) Open(sealed []byte, purpose string) (string, error) {
	b, err := open(k.aead, sealed, purpose)
	return string(b), err
}

// KEK is an operator's key-encryption key.
type KEK struct {
	aead cipher.AEAD
	id   string
}

// NewKEK returns the key-encryption key of 32 raw bytes.
func NewKEK(raw []byte) (*KEK, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key-encryption key: want %d bytes, got %d", KeySize, len(raw))
	}
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("tollgate key-encryption key id"))
	return &KEK{aead: aead, id: hex.EncodeToString(m.Sum(nil)[:8])}, nil
}

// ID names the key without revealing it: the data key's wrapping records
// it, so a node knows which of its keys unwraps.
func (k *KEK) ID() string { return k.id }

// Wrap encrypts a data key under the key-encryption key.
func (k *KEK) Wrap(dataKey []byte) []byte { return seal(k.aead, dataKey, "tollgate data key") }

// Unwrap decrypts a wrapped data key.
func (k *KEK) Unwrap(wrapped []byte) ([]byte, error) {
	return open(k.aead, wrapped, "tollgate data key")
}

// Equal tells whether two check values are the same, in constant time.
func Equal(a, b []byte) bool { return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 }

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Overhead is how many bytes sealing adds to a value: nonce and tag.
const Overhead = 12 + 16

func seal(aead cipher.AEAD, plain []byte, purpose string) []byte {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("sealing: no randomness: " + err.Error())
	}
	return aead.Seal(out, out, plain, []byte(purpose))
}

func open(aead cipher.AEAD, sealed []byte, purpose string) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < ns+aead.Overhead() {
		return nil, ErrOpen
	}
	b, err := aead.Open(nil, sealed[:ns], sealed[ns:], []byte(purpose))
	if err != nil {
		return nil, ErrOpen
	}
	return b, nil
}
