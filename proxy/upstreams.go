package proxy

import (
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
)

// ErrUpstreamRefused is wrapped by the error of a dial to an upstream
// address the UpstreamPolicy refuses.
var ErrUpstreamRefused = errors.New("proxy: upstream address refused")

// UpstreamPolicy says which addresses the proxy may reach upstreams at. It
// is checked on the address actually dialed (after DNS), and, for a stage
// url whose host is an IP address, when the configuration is loaded. It
// refuses, unless Allow covers the address:
//
//   - link-local addresses (169.254.0.0/16, fe80::/10): cloud metadata
//     services live there (169.254.169.254), as does the IPv6 one of AWS
//     (fd00:ec2::254), refused too;
//   - this node's own listeners: OwnPorts on loopback, on an unspecified
//     address (0.0.0.0 and :: reach this host) or on LocalAddrs.
//
// Every other address, loopback included, is allowed: a single node is
// tried with an upstream on loopback.
type UpstreamPolicy struct {
	// Allow lists prefixes the rules above do not apply to. Default none.
	Allow []netip.Prefix
	// OwnPorts are the TCP ports this node listens on (data plane, admin,
	// Raft, gRPC, gossip). Default none.
	OwnPorts []uint16
	// LocalAddrs are this host's own addresses besides loopback. Default
	// none.
	LocalAddrs []netip.Addr
}

// awsMetadataV6 is the IPv6 address of the AWS instance metadata service.
var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

// refusedError is a refused upstream address and why.
type refusedError struct {
	addr netip.AddrPort
	why  string
}

func (e *refusedError) Error() string {
	if !e.addr.IsValid() {
		return ErrUpstreamRefused.Error() + ": address " + e.why
	}
	return ErrUpstreamRefused.Error() + ": " + e.addr.String() + " " + e.why
}

func (e *refusedError) Is(target error) bool { return target == ErrUpstreamRefused }

// check returns a *refusedError when the policy refuses ap, else nil.
func (u *UpstreamPolicy) check(ap netip.AddrPort) error {
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range u.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	switch {
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return &refusedError{ap, "is link-local (cloud metadata lives there); allow it with --allow-upstream"}
	case ip == awsMetadataV6:
		return &refusedError{ap, "is the cloud metadata service; allow it with --allow-upstream"}
	case slices.Contains(u.OwnPorts, ap.Port()) &&
		(ip.IsLoopback() || ip.IsUnspecified() || slices.Contains(u.LocalAddrs, ip)):
		return &refusedError{ap, "is one of this node's own listeners"}
	}
	return nil
}

// control is a net.Dialer Control function: it sees the address about to
// be dialed, after name resolution.
func (u *UpstreamPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusedError{why: "cannot be parsed: " + strconv.Quote(address)}
	}
	return u.check(ap)
}

// checkURL checks a stage url whose host is an IP address; a host name is
// checked when it is dialed.
func (u *UpstreamPolicy) checkURL(t *url.URL) error {
	ip, err := netip.ParseAddr(t.Hostname())
	if err != nil {
		return nil
	}
	port := uint16(80)
	if t.Scheme == "https" {
		port = 443
	}
	if p := t.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil // parseTarget's business; a dial would check it
		}
		port = uint16(n)
	}
	return u.check(netip.AddrPortFrom(ip, port))
}
