// Package pki makes and checks what a Tollgate cluster's transport security
// needs: a cluster CA, node certificates that name their node id, and the
// gossip key. It uses only the standard library (ECDSA P-256).
package pki
