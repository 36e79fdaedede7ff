package cluster

import (
	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
	"github.com/tollgate/tollgate/sealing"
)

// checkAdminCredential refuses an admin credential of the wrong shape: its
// id, role, name and creator by package rules, and its secret's sealed form
// and lookup hash by their sizes (the secret itself is never stored). Apply
// calls it for every PutAdminCredential; a snapshot's credentials can be
// checked with it too.
func checkAdminCredential(c *pb.AdminCredential) *pb.Result {
	if c == nil {
		return fail(codeBad, "admin credential is missing")
	}
	for _, err := range []error{rules.CredentialID(c.Id), rules.Role(c.Role), rules.CredentialName(c.Name), rules.Actor(c.CreatedBy)} {
		if r := refused(err); r != nil {
			return r
		}
	}
	if len(c.SecretLookup) != sealing.LookupSize {
		return fail(codeBad, "admin credential %s: the secret's lookup hash must have %d bytes", c.Id, sealing.LookupSize)
	}
	if n := len(c.SecretSealed) - sealing.Overhead; n < rules.MinCredentialSecretLen || n > rules.MaxCredentialSecretLen {
		return fail(codeBad, "admin credential %s: the sealed secret must have %d to %d bytes", c.Id,
			rules.MinCredentialSecretLen+sealing.Overhead, rules.MaxCredentialSecretLen+sealing.Overhead)
	}
	return nil
}

// applyPutAdminCredential adds an admin credential. It never replaces one:
// a credential is rotated by adding a new one and deleting the old, so a
// retried or concurrent add of the same id (two nodes reading the same
// credentials file) leaves the first.
func applyPutAdminCredential(a *applyCtx, c *pb.Config, m *pb.PutAdminCredential) *pb.Result {
	cred := m.GetCredential()
	if r := checkAdminCredential(cred); r != nil {
		return r
	}
	if c.AdminCredentials == nil {
		c.AdminCredentials = map[string]*pb.AdminCredential{}
	}
	if _, ok := c.AdminCredentials[cred.Id]; ok {
		return fail(codeConflict, "Admin credential %s already exists", cred.Id)
	}
	cred.CreatedDate = a.sec
	c.AdminCredentials[cred.Id] = cred
	return &pb.Result{Id: cred.Id}
}

func applyDeleteAdminCredential(c *pb.Config, m *pb.DeleteAdminCredential) *pb.Result {
	if r := refused(rules.CredentialID(m.Id)); r != nil {
		return r
	}
	if _, ok := c.AdminCredentials[m.Id]; !ok {
		return fail(codeNotFound, "Invalid admin credential identifier specified")
	}
	delete(c.AdminCredentials, m.Id)
	return &pb.Result{Id: m.Id}
}
