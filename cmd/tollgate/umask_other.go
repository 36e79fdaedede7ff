//go:build !unix

package main

// privateUmask does nothing where there is no umask; the cluster package
// still tightens its data dir.
func privateUmask() int { return 0 }
