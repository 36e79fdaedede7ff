package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is Raft's transport over plain TCP. Unlike raft's own TCP
// transport it listens before it knows its advertised port, so a listen
// port of 0 works.
type tcpStream struct {
	net.Listener
	advertise net.Addr
}

func listenStream(listen, advertise string) (*tcpStream, error) {
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
	return net.DialTimeout("tcp", string(address), timeout)
}
