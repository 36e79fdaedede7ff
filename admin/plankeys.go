package admin

import (
	"math"
	"net/http"
	"strings"

	pb "github.com/tollgate/tollgate/proto"
)

type createUsagePlanKeyRequest struct {
	KeyID   string `json:"keyId"`
	KeyType string `json:"keyType"`
}

func (s *Server) createUsagePlanKey(w http.ResponseWriter, r *http.Request) *apiError {
	planID := r.PathValue("usageplan_id")
	var req createUsagePlanKeyRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if req.KeyType != "API_KEY" {
		return badRequest("Invalid key type %q specified: the only key type is API_KEY", truncate(req.KeyType))
	}
	if req.KeyID == "" {
		return badRequest("keyId is required")
	}
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_CreateUsagePlanKey{CreateUsagePlanKey: &pb.CreateUsagePlanKey{
		PlanId: planID, KeyId: req.KeyID,
	}}}); e != nil {
		return e
	}
	k := s.store.Config().GetApiKeys()[req.KeyID]
	if k == nil {
		// Deleted between the attach and this read.
		return notFound(msgKeyNotFound)
	}
	v, e := s.opener(r.Context()).value(k)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, planKeyView(k, v))
	return nil
}

func (s *Server) listUsagePlanKeys(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	cfg := s.store.Config()
	name := q.Get("name")
	attached := cfg.GetPlanKeys()[r.PathValue("usageplan_id")].GetKeys()
	type entry struct {
		key *pb.ApiKey
		at  uint64
	}
	var keys []entry
	for id, at := range attached {
		k := cfg.GetApiKeys()[id]
		if k == nil || !strings.HasPrefix(k.GetName(), name) {
			continue
		}
		keys = append(keys, entry{k, at})
	}
	// In the order keys were attached.
	values := s.opener(r.Context())
	return writePage(w, q, keys, func(e entry) cursor { return cursor{int64(min(e.at, math.MaxInt64)), e.key.GetId()} },
		func(en entry) (usagePlanKeyView, *apiError) {
			v, e := values.value(en.key)
			return planKeyView(en.key, v), e
		})
}

func (s *Server) getUsagePlanKey(w http.ResponseWriter, r *http.Request) *apiError {
	cfg := s.store.Config()
	planID, keyID := r.PathValue("usageplan_id"), r.PathValue("key_id")
	if cfg.GetUsagePlans()[planID] == nil {
		return notFound(msgPlanNotFound)
	}
	if _, in := cfg.GetPlanKeys()[planID].GetKeys()[keyID]; !in {
		return notFound(msgKeyNotFound)
	}
	k := cfg.GetApiKeys()[keyID]
	if k == nil {
		return notFound(msgKeyNotFound)
	}
	v, e := s.opener(r.Context()).value(k)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, planKeyView(k, v))
	return nil
}

func (s *Server) deleteUsagePlanKey(w http.ResponseWriter, r *http.Request) *apiError {
	planID, keyID := r.PathValue("usageplan_id"), r.PathValue("key_id")
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteUsagePlanKey{DeleteUsagePlanKey: &pb.DeleteUsagePlanKey{
		PlanId: planID, KeyId: keyID,
	}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}
