package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/tollgate/tollgate/proto"
)

// Snapshot encoding.
//
// Versions 1 and 2 are one pb.Snapshot message. Version 3 is a stream, so
// that neither Persist nor Restore holds the whole encoding in memory:
// snapshotMagic, then pb.Snapshot messages each preceded by its size as a
// varint (protodelim). The first (the header) carries the version and
// everything but the per-key maps: the configuration's keys, plan
// memberships and deleted keys, and the ledgers. Each later one (a part)
// carries at most snapshotPart entries of one of those maps and nothing
// else; Restore merges them. Entries are written in map order: sorting a
// million ids would cost more than the rest of the write, and nothing
// reads a snapshot but Restore, so a state snapshots to the same content,
// not always to the same bytes.

// snapshotMagic opens a snapshot of version 3 or later. A snapshot of an
// earlier version opens with its version field's tag (0x08), never 0x00.
const snapshotMagic = "\x00tollgate snapshot stream\n"

// snapshotPart is the most entries a part holds.
const snapshotPart = 4096

// snapshotMaxMessage bounds the size Restore accepts for one message of a
// stream (the header or a part), so that a size read from a damaged or
// crafted file never makes it allocate more. A part of snapshotPart
// entries is a few MiB; the header holds the configuration without its
// keys and the de-duplication window.
const snapshotMaxMessage = 256 << 20

// writeSnapshot writes s as a stream of the current version (s.Version is
// not looked at). s is only read.
func writeSnapshot(w io.Writer, s *pb.Snapshot) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	cfg := s.GetConfig()
	head := &pb.Snapshot{
		Version:          snapshotVersion,
		Config:           shallowConfig(cfg),
		Dedup:            s.Dedup,
		LastTimeUnixNano: s.LastTimeUnixNano,
		AppliedIndex:     s.AppliedIndex,
		Nodes:            s.Nodes,
	}
	write := func(m *pb.Snapshot) error {
		_, err := protodelim.MarshalTo(bw, m)
		return err
	}
	if err := write(head); err != nil {
		return err
	}
	err := writeParts(cfg.GetApiKeys(), write, func(m map[string]*pb.ApiKey) *pb.Snapshot {
		return &pb.Snapshot{Config: &pb.Config{ApiKeys: m}}
	})
	for plan, pk := range cfg.GetPlanKeys() {
		if err == nil {
			err = writeParts(pk.GetKeys(), write, func(m map[string]uint64) *pb.Snapshot {
				return &pb.Snapshot{Config: &pb.Config{PlanKeys: map[string]*pb.PlanKeys{plan: {Keys: m}}}}
			})
		}
		if err == nil && len(pk.GetKeys()) == 0 {
			// A plan whose membership is empty but present.
			err = write(&pb.Snapshot{Config: &pb.Config{PlanKeys: map[string]*pb.PlanKeys{plan: {}}}})
		}
	}
	if err == nil {
		err = writeParts(cfg.GetDeletedApiKeys(), write, func(m map[string]*pb.DeletedApiKey) *pb.Snapshot {
			return &pb.Snapshot{Config: &pb.Config{DeletedApiKeys: m}}
		})
	}
	if err == nil {
		err = writeParts(s.Ledgers, write, func(m map[string]*pb.KeyLedger) *pb.Snapshot {
			return &pb.Snapshot{Ledgers: m}
		})
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeParts writes the entries of m, snapshotPart a part.
func writeParts[V any](m map[string]V, write func(*pb.Snapshot) error, part func(map[string]V) *pb.Snapshot) error {
	var chunk map[string]V
	for id, v := range m {
		if chunk == nil {
			chunk = make(map[string]V, min(snapshotPart, len(m)))
		}
		chunk[id] = v
		if len(chunk) == snapshotPart {
			if err := write(part(chunk)); err != nil {
				return err
			}
			chunk = nil
		}
	}
	if chunk != nil {
		return write(part(chunk))
	}
	return nil
}

// shallowConfig returns a Config that shares every field of c but the
// per-key maps, which parts carry.
func shallowConfig(c *pb.Config) *pb.Config {
	out := &pb.Config{}
	if c == nil {
		return out
	}
	dst, src := out.ProtoReflect(), c.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Number() {
		case fieldApiKeys, fieldPlanKeys, fieldDeletedApiKeys:
		default:
			dst.Set(fd, v)
		}
		return true
	})
	// Fields this version does not know (written by a newer one) go on as
	// they came, as a whole-message encoding keeps them.
	dst.SetUnknown(src.GetUnknown())
	return out
}

// readSnapshot reads a snapshot of any version Restore takes and returns
// it as one message: a stream's parts merged into its header.
func readSnapshot(r io.Reader) (*pb.Snapshot, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if first, err := br.Peek(1); err != nil || first[0] != snapshotMagic[0] {
		// One message: version 1 or 2.
		b, err := io.ReadAll(br)
		if err != nil {
			return nil, fmt.Errorf("read snapshot: %w", err)
		}
		var s pb.Snapshot
		if err := proto.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("decode snapshot: %w", err)
		}
		if s.Version != 2 && s.Version != 1 {
			return nil, fmt.Errorf("snapshot version %d is not supported by this node (want %d, 2 or 1)", s.Version, snapshotVersion)
		}
		return &s, nil
	}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, errors.New("decode snapshot: not a snapshot stream")
	}
	opts := protodelim.UnmarshalOptions{MaxSize: snapshotMaxMessage}
	var s pb.Snapshot
	if err := opts.UnmarshalFrom(br, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot header: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not supported by this node (want %d, 2 or 1)", s.Version, snapshotVersion)
	}
	if s.Config == nil {
		s.Config = &pb.Config{}
	}
	c := s.Config
	if len(c.ApiKeys)+len(c.PlanKeys)+len(c.DeletedApiKeys)+len(s.Ledgers) > 0 {
		return nil, errors.New("decode snapshot: the header holds per-key entries")
	}
	c.ApiKeys, c.PlanKeys, c.DeletedApiKeys = map[string]*pb.ApiKey{}, map[string]*pb.PlanKeys{}, map[string]*pb.DeletedApiKey{}
	s.Ledgers = map[string]*pb.KeyLedger{}
	for n := 1; ; n++ {
		var part pb.Snapshot
		err := opts.UnmarshalFrom(br, &part)
		if errors.Is(err, io.EOF) {
			return &s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode snapshot part %d: %w", n, err)
		}
		pc := part.GetConfig()
		err = errors.Join(
			merge(c.ApiKeys, pc.GetApiKeys()),
			merge(c.DeletedApiKeys, pc.GetDeletedApiKeys()),
			merge(s.Ledgers, part.Ledgers),
		)
		for plan, pk := range pc.GetPlanKeys() {
			into := c.PlanKeys[plan]
			if into == nil {
				into = &pb.PlanKeys{Keys: map[string]uint64{}}
				c.PlanKeys[plan] = into
			}
			err = errors.Join(err, merge(into.Keys, pk.GetKeys()))
		}
		if pc != nil {
			pc.ApiKeys, pc.PlanKeys, pc.DeletedApiKeys = nil, nil, nil
			if proto.Size(pc) == 0 {
				part.Config = nil
			}
		}
		part.Ledgers = nil
		if err == nil && proto.Size(&part) > 0 {
			err = errors.New("it holds more than per-key entries")
		}
		if err != nil {
			return nil, fmt.Errorf("decode snapshot part %d: %w", n, err)
		}
	}
}

// merge adds src's entries to dst, refusing an entry dst already holds.
func merge[V any](dst, src map[string]V) error {
	for k, v := range src {
		if _, ok := dst[k]; ok {
			return fmt.Errorf("%q is stored twice", k)
		}
		dst[k] = v
	}
	return nil
}
