package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is Raft's transport over TCP, with mutual TLS when the node
// has certificates. Unlike raft's own TCP transport it listens before it
// knows its advertised port, so a listen port of 0 works.
type tcpStream struct {
	net.Listener
	advertise net.Addr
	// client is the TLS configuration to dial node id with (nil: plain
	// TCP); refused logs the servers it refuses.
	client  func(id string) *tls.Config
	refused *refusals
}

// listenStream listens for Raft. With certs, a connection reaches Raft only
// after a TLS handshake with a node certificate of the cluster CA that
// names a node known knows, and Dial presents this node's certificate and
// checks that the peer's names the node dialed for (see dialAddress).
func listenStream(listen, advertise string, certs *certStore, refused *refusals, known func(string) bool) (*tcpStream, error) {
	s, err := listenTCPStream(listen, advertise)
	if err != nil {
		return nil, err
	}
	if certs != nil {
		s.Listener = newTLSListener(s.Listener, certs.serverTLS(known), refused)
		s.client = func(id string) *tls.Config { return certs.clientTLS(id) }
		s.refused = refused
	}
	return s, nil
}

// dialAddress is what Raft's transport is given to dial a server (by
// raftAddrs): its address and its node id, so that Dial checks the
// certificate of the server that answers against the id, and the
// transport's pool keeps one connection per address and id.
func dialAddress(addr, id string) raft.ServerAddress {
	return raft.ServerAddress(addr + "#" + id)
}

// splitDialAddress undoes dialAddress; an address without an id gives "".
func splitDialAddress(a raft.ServerAddress) (addr, id string) {
	addr, id, _ = strings.Cut(string(a), "#")
	return addr, id
}

func listenTCPStream(listen, advertise string) (*tcpStream, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("raft listen on %s: %w", listen, err)
	}
	bound := ln.Addr().(*net.TCPAddr)
	host := ""
	if advertise != "" {
		h, p, err := net.SplitHostPort(advertise)
		if err != nil {
			// A bare host: use the bound port.
			h, p = advertise, ""
		}
		host = h
		if p != "" && p != "0" {
			a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(h, p))
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
			}
			return &tcpStream{Listener: ln, advertise: a}, nil
		}
	} else {
		host = bound.IP.String()
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft advertise address %q is not an address peers can dial: give an IP address", host)
	}
	return &tcpStream{Listener: ln, advertise: &net.TCPAddr{IP: ip, Port: bound.Port}}, nil
}

func (s *tcpStream) Addr() net.Addr { return s.advertise }

// Dial connects to a Raft server. With TLS, the server's certificate must
// name the node id the address carries: an address without one, or a
// server whose certificate names another node, is refused (and logged once
// a minute per address).
func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	addr, id := splitDialAddress(address)
	if s.client == nil {
		return net.DialTimeout("tcp", addr, timeout)
	}
	if id == "" {
		return nil, fmt.Errorf("%w: no node id known for Raft address %s", ErrPeerRefused, addr)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client(id)}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, ErrPeerRefused) && s.refused != nil {
		s.refused.note("raft", true, addr, err)
	}
	return c, err
}
