package cluster

import (
	"net"
	"time"
)

// rejoinDialTimeout bounds the reachability check before a rejoin.
const rejoinDialTimeout = time.Second

// rejoinDead gossips again with one member gossip holds dead, in turn,
// every ReconcileInterval. memberlist never probes a dead member again:
// without this, two sides of a partition that heals each keep the other
// dead (Raft mends, gossip does not, and the reaper then removes the
// other side). The member's last address is first dialed with a short
// timeout, so a Join (memberlist's TCP timeout is 10s, and a Join cannot
// be canceled) only starts toward an address that answers, and Close
// waits at most that long for a pass.
func (n *Node) rejoinDead() {
	var dead []string
	for _, m := range n.gossip.Members() {
		if m.State == "dead" && m.ID != n.ID() && m.Gossip != "" {
			dead = append(dead, m.Gossip)
		}
	}
	if len(dead) == 0 {
		return
	}
	n.rejoinTurn++
	addr := dead[n.rejoinTurn%len(dead)]
	c, err := net.DialTimeout("tcp", addr, rejoinDialTimeout)
	if err != nil {
		return
	}
	c.Close()
	if k, err := n.gossip.ml.Join([]string{addr}); k > 0 {
		n.log.Info("gossip reached a member it held dead", "addr", addr)
	} else {
		n.log.Debug("rejoin a member held dead", "addr", addr, "err", err)
	}
}
