package admin

import (
	"context"
	"net/http"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/sealing"
)

// Key values at rest: the API writes a key's value only as its lookup hash
// and sealed form (package sealing), and opens the sealed form to show it.
// Keys written before values were sealed carry their plain value until the
// leader seals them; the state machine cannot compare the two forms, so
// the API does: a create refuses a value such a key holds, and an import
// seals such a key before it overwrites it.

// sealingKeys returns the keys of the cluster's data key, which is made on
// first use: they seal key values and admin credential secrets.
func (s *Server) sealingKeys(ctx context.Context) (*sealing.Keys, *apiError) {
	k, err := s.store.Keys(ctx)
	if err != nil {
		return nil, unavailable("This node cannot use the cluster's data key now (" + err.Error() + "); check its key-encryption key file, retry or ask another node")
	}
	return k, nil
}

// valueOpener opens the values of keys for one request, asking for the
// cluster's keys once, and only for a sealed value.
type valueOpener struct {
	s    *Server
	ctx  context.Context
	keys *sealing.Keys
}

func (s *Server) opener(ctx context.Context) *valueOpener { return &valueOpener{s: s, ctx: ctx} }

// value returns a key's value. A sealed value that does not open (a wrong
// data key, changed bytes) is an internal failure that names the key.
func (o *valueOpener) value(k *pb.ApiKey) (string, *apiError) {
	if v := k.GetValue(); v != "" {
		return v, nil
	}
	if o.keys == nil {
		keys, e := o.s.sealingKeys(o.ctx)
		if e != nil {
			return "", e
		}
		o.keys = keys
	}
	v, err := o.keys.OpenAPIKey(k)
	if err != nil {
		return "", &apiError{status: http.StatusInternalServerError, code: "InternalFailure",
			msg: "The value of API Key " + k.GetId() + " cannot be shown: " + err.Error()}
	}
	return v, nil
}

// plainHolders maps the plain values of keys not sealed yet to their ids.
func plainHolders(cfg *pb.Config) map[string]string {
	var m map[string]string
	for id, k := range cfg.GetApiKeys() {
		if v := k.GetValue(); v != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[v] = id
		}
	}
	return m
}
