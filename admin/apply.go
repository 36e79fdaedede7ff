package admin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
)

// maxCommandBytes caps one change, so that it fits a Raft entry comfortably.
// An import of 10,000 keys, each sealed (an id, a 32-byte lookup hash, the
// sealed value) with a name, a description and a plan id, encodes to 1.3
// to 3 MB: 4 MiB lets such an import through in one change, which Raft
// replicates in one entry on a LAN without trouble (ledger group commits
// keep their own, smaller cap).
const maxCommandBytes = 4 << 20

// updateAttempts is how often a read-patch-put is retried when the object
// changed between the read and the put.
const updateAttempts = 5

// apply proposes a command and maps its failures to answers.
func (s *Server) apply(ctx context.Context, cmd *pb.Command) (*pb.Result, *apiError) {
	cmd.Actor = actorFrom(ctx)
	if n := proto.Size(cmd); n > maxCommandBytes {
		return nil, badRequest("The change is too large (%d bytes encoded, at most %d): split it into smaller ones", n, maxCommandBytes)
	}
	res, err := s.store.Apply(ctx, cmd)
	if err != nil {
		s.metrics.applyErrors.Inc()
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, unavailable("The request was canceled before the change was applied; it may or may not have taken effect")
		}
		return nil, unavailable(fmt.Sprintf("The change could not be applied now (%v); retry", err))
	}
	if res == nil {
		return nil, unavailable("The change was not applied; retry")
	}
	if e := resultError(res); e != nil {
		return res, e
	}
	return res, nil
}

// update reads an object, changes a private copy and puts it back guarded by
// the revision it read. When the put fails because the object changed in
// between, it starts over, a few times.
//
// read returns the current object and its revision (nil if missing);
// change edits the copy (nil error) or refuses; put builds the command.
// update returns the object as it was applied, or the unchanged object when
// change left it as it was.
func update[T proto.Message](s *Server, ctx context.Context,
	read func(*pb.Config) (T, uint64, *apiError),
	change func(T, *pb.Config) *apiError,
	put func(T, uint64) *pb.Command,
) (T, *apiError) {
	var zero T
	for range updateAttempts {
		cur, rev, e := read(s.store.Config())
		if e != nil {
			return zero, e
		}
		next := proto.Clone(cur).(T)
		if e := change(next, s.store.Config()); e != nil {
			return zero, e
		}
		if proto.Equal(cur, next) {
			return cur, nil
		}
		res, e := s.apply(ctx, put(next, rev))
		if e == nil {
			if now, _, e2 := read(s.store.Config()); e2 == nil {
				return now, nil
			}
			return next, nil
		}
		if res.GetCode() != pb.ErrorCode_ERROR_CODE_CONFLICT {
			return zero, e
		}
		// A conflict is either a concurrent change (start over) or a
		// business rule (answer it): the revision tells which.
		now, nowRev, e2 := read(s.store.Config())
		if e2 != nil {
			return zero, e2
		}
		_ = now
		if nowRev == rev {
			return zero, e
		}
	}
	return zero, conflict("The object changed concurrently too many times; retry the update")
}
