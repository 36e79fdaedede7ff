package proxy

import "syscall"

// DialControl is a net.Dialer Control function that refuses the addresses
// the policy refuses, for other components that dial addresses taken from
// the configuration (quota notification webhooks, package notify).
func (u *UpstreamPolicy) DialControl(network, address string, c syscall.RawConn) error {
	return u.control(network, address, c)
}
