package admin

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
	"github.com/tollgate/tollgate/sealing"
)

// Admin credentials (an extension): an access key id and a secret, shown
// once when created, stored only sealed and as the secret's lookup hash.

const (
	base32Upper        = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	credentialIDPrefix = "TGAK"
	credentialIDLen    = 16 // after the prefix
	credentialSecLen   = 40
)

func newCredentialID() string {
	return credentialIDPrefix + randomString(credentialIDLen, base32Upper)
}

func newCredentialSecret() string { return randomString(credentialSecLen, alnum) }

// credentialView is a credential as listed: never its secret.
type credentialView struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Role        string `json:"role"`
	CreatedDate int64  `json:"createdDate"`
	CreatedBy   string `json:"createdBy,omitempty"`
}

func credView(c *pb.AdminCredential) credentialView {
	return credentialView{ID: c.Id, Name: c.Name, Role: c.Role, CreatedDate: c.CreatedDate, CreatedBy: c.CreatedBy}
}

// createdCredential is the answer to a create: the only time the secret
// is shown.
type createdCredential struct {
	credentialView
	Secret string `json:"secret"`
	Token  string `json:"token"`
}

// SealCredential builds the stored form of a credential: the secret
// sealed for this id and its lookup hash, never the secret itself.
func SealCredential(keys *sealing.Keys, id, secret, role, name, actor string) (*pb.AdminCredential, error) {
	for _, err := range []error{rules.CredentialID(id), rules.CredentialSecret(secret), rules.Role(role), rules.CredentialName(name)} {
		if err != nil {
			return nil, err
		}
	}
	return &pb.AdminCredential{Id: id, Name: name, Role: role, CreatedBy: actor,
		SecretSealed: keys.Seal(secret, credentialPurpose(id)), SecretLookup: keys.LookupBytes(secret)}, nil
}

// createCredential answers POST /tollgate/credentials {name, role}: 201
// with the id, the secret and the bearer token, shown this once.
func (s *Server) createCredential(w http.ResponseWriter, r *http.Request) *apiError {
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if e := readJSON(w, r, &in); e != nil {
		return e
	}
	if err := rules.Role(in.Role); err != nil {
		return badRequest("%v", err)
	}
	if err := rules.CredentialName(in.Name); err != nil {
		return badRequest("%v", err)
	}
	keys, e := s.sealingKeys(r.Context())
	if e != nil {
		return e
	}
	id := freshID(newCredentialID, func(id string) bool { return s.store.Config().GetAdminCredentials()[id] != nil })
	secret := newCredentialSecret()
	cred, err := SealCredential(keys, id, secret, in.Role, in.Name, actorFrom(r.Context()))
	if err != nil {
		return badRequest("%v", err)
	}
	res, e := s.apply(r.Context(), putCredential(cred))
	if e != nil {
		return e
	}
	cred.CreatedDate = res.TimeUnix
	writeJSON(w, http.StatusCreated, createdCredential{credentialView: credView(cred), Secret: secret, Token: id + "." + secret})
	return nil
}

func putCredential(c *pb.AdminCredential) *pb.Command {
	return &pb.Command{Body: &pb.Command_PutAdminCredential{PutAdminCredential: &pb.PutAdminCredential{Credential: c}}}
}

// listCredentials answers GET /tollgate/credentials: every credential,
// ordered by id, without secrets.
func (s *Server) listCredentials(w http.ResponseWriter, _ *http.Request) *apiError {
	creds := s.store.Config().GetAdminCredentials()
	out := listView[credentialView]{Item: make([]credentialView, 0, len(creds))}
	for _, id := range slices.Sorted(maps.Keys(creds)) {
		out.Item = append(out.Item, credView(creds[id]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteCredential answers DELETE /tollgate/credentials/{id}: 202. The
// last admin credential cannot go while read-only ones remain (nobody
// could manage credentials any more); deleting the very last credential
// returns the API to answering callers on its host without one.
func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("credential_id")
	creds := s.store.Config().GetAdminCredentials()
	cred := creds[id]
	if cred == nil {
		return notFound("Invalid admin credential identifier specified")
	}
	if cred.Role == rules.RoleAdmin && len(creds) > 1 {
		admins := 0
		for _, c := range creds {
			if c.Role == rules.RoleAdmin {
				admins++
			}
		}
		if admins == 1 {
			return conflict(fmt.Sprintf("Cannot delete %s, the last admin credential, while read-only credentials remain: create another admin credential first, or delete the read-only ones", id))
		}
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteAdminCredential{DeleteAdminCredential: &pb.DeleteAdminCredential{Id: id}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

// Credential is an admin credential as an operator gives it, in a
// credentials file.
type Credential struct {
	ID, Secret, Role, Name string
}

// AddCredentials adds, as actor, those of the given credentials the
// cluster does not hold yet: how a node
// brings the credentials of a file it was started with. One that another
// node added first (a conflict) is not an error.
func AddCredentials(ctx context.Context, store Store, actor string, creds []Credential) (added []string, err error) {
	if len(creds) == 0 {
		return nil, nil
	}
	keys, err := store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		if store.Config().GetAdminCredentials()[c.ID] != nil {
			continue
		}
		cred, err := SealCredential(keys, c.ID, c.Secret, c.Role, c.Name, actor)
		if err != nil {
			return added, fmt.Errorf("credential %s: %w", c.ID, err)
		}
		cmd := putCredential(cred)
		cmd.Actor = actor
		res, err := store.Apply(ctx, cmd)
		if err != nil {
			return added, fmt.Errorf("credential %s: %w", c.ID, err)
		}
		switch res.GetCode() {
		case pb.ErrorCode_ERROR_CODE_NONE:
			added = append(added, c.ID)
		case pb.ErrorCode_ERROR_CODE_CONFLICT:
		default:
			return added, fmt.Errorf("credential %s: %s", c.ID, res.GetMessage())
		}
	}
	return added, nil
}

// audit logs one line for a change asked for: who, what and the outcome;
// never a body, so never a secret or a key value.
func (s *Server) audit(r *http.Request, who *principal, status int) {
	s.log.Info("audit", "actor", who.actor, "role", who.role, "method", r.Method, "path", r.URL.Path,
		"status", status, "request_id", requestIDFrom(r.Context()))
}

// NewCredential returns a fresh credential: a new access key id and
// secret, for a credentials file.
func NewCredential(role, name string) Credential {
	return Credential{ID: newCredentialID(), Secret: newCredentialSecret(), Role: role, Name: name}
}
