package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is Raft's transport over TCP, with mutual TLS when the node
// has certificates. Unlike raft's own TCP transport it listens before it
// knows its advertised port, so a listen port of 0 works.
type tcpStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config // nil: plain TCP
}

// listenStream listens for Raft. With certs, a connection reaches Raft only
// after a TLS handshake with a node certificate of the cluster CA, and
// Dial presents this node's certificate and checks the peer's.
func listenStream(listen, advertise string, certs *certStore, refused *refusals) (*tcpStream, error) {
	s, err := listenTCPStream(listen, advertise)
	if err != nil {
		return nil, err
	}
	if certs != nil {
		s.Listener = newTLSListener(s.Listener, certs.serverTLS(), refused)
		s.client = certs.clientTLS()
	}
	return s, nil
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

func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.client == nil {
		return net.DialTimeout("tcp", string(address), timeout)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client}
	return d.Dial("tcp", string(address))
}
