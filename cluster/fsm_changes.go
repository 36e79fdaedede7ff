package cluster

import pb "github.com/tollgate/tollgate/proto"

// What a configuration change changed, for readers that keep state per
// key (the data plane's table): a change that only touched some keys
// lets them update those keys instead of rebuilding for every key.

// changeLogSize is how many recent configurations the FSM remembers the
// changes of. A reader further behind rebuilds.
const changeLogSize = 256

// maxChangedKeys bounds the keys KeyChanges lists: past it, rebuilding
// costs a reader little more than applying them.
const maxChangedKeys = 1 << 16

// change is what the configuration of index to changed of the one of
// index from: the keys listed and nothing else (keysOnly), or anything.
// Configurations are named by their index, not held: each holds its own
// copy of the key maps, and 256 of them would hold gigabytes at a million
// keys. A configuration is the same on every node at a given index.
type change struct {
	from, to uint64
	keys     []string
	keysOnly bool
}

// changeLog is a ring of the latest changes, under the FSM's mu. It is no
// part of the replicated state: it is not in snapshots, and a Restore
// empties it.
type changeLog struct {
	ring [changeLogSize]change
	next int
}

func (l *changeLog) add(from, to *pb.Config, cmd *pb.Command, res *pb.Result) {
	keys, only := changedKeys(cmd, res)
	l.ring[l.next%changeLogSize] = change{from: from.GetIndex(), to: to.GetIndex(), keys: keys, keysOnly: only}
	l.next++
}

// changedKeys returns the keys an applied configuration command changed
// (a key's entry or its plan memberships; a deleted key's record too), and
// false for a command that may have changed more than keys. A record of
// quota notices changes no key: readers that keep state per key do not
// build from it (the data plane does not read it).
func changedKeys(cmd *pb.Command, res *pb.Result) ([]string, bool) {
	switch b := cmd.Body.(type) {
	case *pb.Command_PutApiKey:
		return []string{b.PutApiKey.GetKey().GetId()}, true
	case *pb.Command_DeleteApiKey:
		return []string{b.DeleteApiKey.GetId()}, true
	case *pb.Command_CreateUsagePlanKey:
		return []string{b.CreateUsagePlanKey.GetKeyId()}, true
	case *pb.Command_DeleteUsagePlanKey:
		return []string{b.DeleteUsagePlanKey.GetKeyId()}, true
	case *pb.Command_ImportApiKeys, *pb.Command_SealApiKeys:
		return res.GetIds(), true // the keys imported or sealed
	case *pb.Command_RecordQuotaNotices:
		return nil, true
	}
	return nil, false
}

// KeyChanges tells which keys changed between two configurations the FSM
// published, from older to newer: ok is true when nothing else changed
// (quota notices aside) and the FSM still remembers every change between
// them. A key may be listed more than once.
func (f *FSM) KeyChanges(from, to *pb.Config) (keys []string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l := &f.changes
	at, stop := to.GetIndex(), from.GetIndex()
	for i := 1; i <= min(l.next, changeLogSize) && at != stop; i++ {
		c := &l.ring[(l.next-i)%changeLogSize]
		if c.to != at || !c.keysOnly || len(keys)+len(c.keys) > maxChangedKeys {
			return nil, false
		}
		keys = append(keys, c.keys...)
		at = c.from
	}
	return keys, at == stop
}
