// Package sealing keeps secrets out of the data dir: API key values and
// admin credential secrets.
//
// The cluster has one data key: 32 random bytes, stored in the replicated
// configuration wrapped (AES-256-GCM) under the operator's key-encryption
// key, a file every node reads and no snapshot or log holds. From the data
// key, HKDF-SHA-256 derives two keys:
//   - the lookup key: HMAC-SHA-256 of a value under it is how the data
//     plane finds a key (the value itself is never stored);
//   - the sealing key: AES-256-GCM of a value under it, so that the admin
//     API can still show a value (includeValue) and SigV4 can check a
//     signature.
//
// Without a key-encryption key the data key is stored unwrapped: values
// are still absent from the data dir, but whoever reads the data dir can
// unseal them. Nodes warn about it at start.
package sealing
