package cluster

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

func putCredential(c *pb.AdminCredential) *pb.Command {
	return &pb.Command{Actor: "anonymous", TimeUnixNano: 1_700_000_000e9,
		Body: &pb.Command_PutAdminCredential{PutAdminCredential: &pb.PutAdminCredential{Credential: c}}}
}

func deleteCredential(id string) *pb.Command {
	return &pb.Command{Body: &pb.Command_DeleteAdminCredential{DeleteAdminCredential: &pb.DeleteAdminCredential{Id: id}}}
}

func goodCredential(t *testing.T, id string) *pb.AdminCredential {
	t.Helper()
	keys, err := sealing.Derive(bytes.Repeat([]byte{5}, sealing.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("s", 40)
	return &pb.AdminCredential{Id: id, Name: "ops", Role: "admin", CreatedBy: "anonymous",
		SecretSealed: keys.Seal(secret, "admin-credential/"+id), SecretLookup: keys.LookupBytes(secret)}
}

func TestAdminCredentialPutDelete(t *testing.T) {
	f := NewFSM()
	id := "TGAKAAAAAAAAAAAAAAAA"
	if r := f.ApplyCommand(1, putCredential(goodCredential(t, id))); r.Code != pb.ErrorCode_ERROR_CODE_NONE || r.Id != id {
		t.Fatalf("put: %v", r)
	}
	got := f.Config().AdminCredentials[id]
	if got == nil || got.CreatedDate != 1_700_000_000 || got.Role != "admin" {
		t.Fatalf("stored %v", got)
	}
	// A second put of the same id (a retry, or two nodes reading one
	// credentials file) keeps the first.
	other := goodCredential(t, id)
	other.Role = "read-only"
	if r := f.ApplyCommand(2, putCredential(other)); r.Code != codeConflict {
		t.Fatalf("second put: %v, want conflict", r)
	}
	if f.Config().AdminCredentials[id].Role != "admin" {
		t.Fatal("a second put replaced the credential")
	}

	// The credential survives a snapshot round trip.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(g.Config().AdminCredentials[id], got) {
		t.Fatalf("restored %v, want %v", g.Config().AdminCredentials[id], got)
	}

	if r := f.ApplyCommand(3, deleteCredential(id)); r.Code != pb.ErrorCode_ERROR_CODE_NONE {
		t.Fatalf("delete: %v", r)
	}
	if len(f.Config().AdminCredentials) != 0 {
		t.Fatal("deleted credential still stored")
	}
	if r := f.ApplyCommand(4, deleteCredential(id)); r.Code != codeNotFound {
		t.Fatalf("delete again: %v, want not found", r)
	}
	if r := f.ApplyCommand(5, deleteCredential("short")); r.Code != codeBad {
		t.Fatalf("delete a malformed id: %v, want refused", r)
	}
}

// TestAdminCredentialForgedRefused: a command that did not come through the
// admin API (forged on the gRPC port) is refused with a typed result and
// changes nothing.
func TestAdminCredentialForgedRefused(t *testing.T) {
	id := "TGAKAAAAAAAAAAAAAAAA"
	for name, change := range map[string]func(c *pb.AdminCredential){
		"short id":         func(c *pb.AdminCredential) { c.Id = "TGAK1" },
		"lower-case id":    func(c *pb.AdminCredential) { c.Id = "tgakaaaaaaaaaaaaaaaa" },
		"id with slash":    func(c *pb.AdminCredential) { c.Id = "TGAKAAAAAAAAAAAA/AAA" },
		"long id":          func(c *pb.AdminCredential) { c.Id = strings.Repeat("A", 129) },
		"no role":          func(c *pb.AdminCredential) { c.Role = "" },
		"superuser role":   func(c *pb.AdminCredential) { c.Role = "root" },
		"long name":        func(c *pb.AdminCredential) { c.Name = strings.Repeat("n", 129) },
		"control in name":  func(c *pb.AdminCredential) { c.Name = "a\nb" },
		"plain secret":     func(c *pb.AdminCredential) { c.SecretSealed = []byte(strings.Repeat("s", 40)) },
		"short sealed":     func(c *pb.AdminCredential) { c.SecretSealed = c.SecretSealed[:30] },
		"huge sealed":      func(c *pb.AdminCredential) { c.SecretSealed = make([]byte, 4096) },
		"no lookup":        func(c *pb.AdminCredential) { c.SecretLookup = nil },
		"short lookup":     func(c *pb.AdminCredential) { c.SecretLookup = c.SecretLookup[:16] },
		"creator with nul": func(c *pb.AdminCredential) { c.CreatedBy = "a\x00b" },
	} {
		f := NewFSM()
		c := goodCredential(t, id)
		change(c)
		if r := f.ApplyCommand(1, putCredential(c)); r.Code != codeBad {
			t.Errorf("%s: %v, want refused", name, r)
		}
		if len(f.Config().AdminCredentials) != 0 {
			t.Errorf("%s: stored", name)
		}
	}
	if r := NewFSM().ApplyCommand(1, putCredential(nil)); r.Code != codeBad {
		t.Errorf("missing credential: %v", r)
	}
}
