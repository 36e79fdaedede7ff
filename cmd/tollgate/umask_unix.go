//go:build unix

package main

import "syscall"

// privateUmask makes every file and directory this process creates from
// now on private to its user (umask 077), whatever mode the code that
// creates it asks for: raft's snapshot store asks for 0755 and 0666, and
// the data dir holds key values. The cluster package tightens its data dir
// on its own too (cluster/DESIGN.md); this covers anything else. It
// returns the previous umask.
func privateUmask() int { return syscall.Umask(0o077) }
