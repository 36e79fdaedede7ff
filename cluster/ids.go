package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	pb "github.com/tollgate/tollgate/proto"
)

// newRequestID returns a random 128-bit id for de-duplicating commands.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// stamp gives a command the leader's time, and a request id when the
// caller did not. Only the leader stamps time: whatever a follower's clock
// says, the ledger's calendar is the leader's.
func stamp(cmd *pb.Command, now time.Time) {
	if cmd.RequestId == "" {
		cmd.RequestId = newRequestID()
	}
	cmd.TimeUnixNano = now.UnixNano()
}
