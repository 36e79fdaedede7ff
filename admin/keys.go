package admin

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

type stageKeyIn struct {
	RestAPIID string `json:"restApiId"`
	StageName string `json:"stageName"`
}

type createAPIKeyRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Enabled     bool              `json:"enabled"`
	Value       string            `json:"value"`
	CustomerID  string            `json:"customerId"`
	StageKeys   []stageKeyIn      `json:"stageKeys"`
	Tags        map[string]string `json:"tags"`
	// GenerateDistinctID is deprecated in the original and has no effect.
	GenerateDistinctID bool `json:"generateDistinctId"`
}

// keyIDTaken tells whether a key id names a key, or a deleted key whose
// usage is kept for the billing export.
func keyIDTaken(cfg *pb.Config, id string) bool {
	return cfg.GetApiKeys()[id] != nil || cfg.GetDeletedApiKeys()[id] != nil
}

func checkCustomerID(c string) *apiError { return invalid(rules.CustomerID(c)) }

// createOrImportAPIKeys is POST /apikeys: CreateApiKey, or ImportApiKeys
// with ?mode=import.
func (s *Server) createOrImportAPIKeys(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	if q.Has("mode") {
		if q.Get("mode") != "import" {
			return badRequest("Invalid mode %q: the only mode is import", truncate(q.Get("mode")))
		}
		return s.importAPIKeys(w, r)
	}
	var req createAPIKeyRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	value := req.Value
	k := &pb.ApiKey{
		Id:          freshID(newKeyID, func(id string) bool { return keyIDTaken(s.store.Config(), id) }),
		Name:        req.Name,
		Description: req.Description,
		Enabled:     req.Enabled,
		CustomerId:  req.CustomerID,
		Tags:        req.Tags,
	}
	if value == "" {
		value = newKeyValue()
	} else if e := checkKeyValue(value); e != nil {
		return e
	}
	if e := checkName("API Key", k.Name); e != nil {
		return e
	}
	if e := checkDescription("API Key", k.Description); e != nil {
		return e
	}
	if e := checkCustomerID(k.CustomerId); e != nil {
		return e
	}
	if e := checkTags(k.Tags); e != nil {
		return e
	}
	cfg := s.store.Config()
	seen := map[string]bool{}
	for _, sk := range req.StageKeys {
		ref := sk.RestAPIID + "/" + sk.StageName
		if !checkPathID(sk.RestAPIID) || !isStageName(sk.StageName) || cfg.GetStages()[ref] == nil {
			return badRequest("Invalid stage key specified: %s", truncate(ref))
		}
		if !seen[ref] {
			seen[ref] = true
			k.StageKeys = append(k.StageKeys, ref)
		}
	}
	keys, e := s.sealingKeys(r.Context())
	if e != nil {
		return e
	}
	if _, taken := plainHolders(cfg)[value]; taken {
		return conflict("API Key already exists")
	}
	sealed := keys.SealAPIKey(k.Id, value)
	k.ValueLookup, k.ValueSealed = sealed.ValueLookup, sealed.ValueSealed
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: k, Create: true}}}); e != nil {
		return e
	}
	if cur := s.store.Config().GetApiKeys()[k.Id]; cur != nil {
		k = cur
	}
	writeJSON(w, http.StatusCreated, keyView(k, value))
	return nil
}

func parseBoolParam(q map[string][]string, name string) (bool, *apiError) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, badRequest("Invalid %s %q: want true or false", name, truncate(vs[0]))
	}
	return b, nil
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	pr, e := parsePage(q)
	if e != nil {
		return e
	}
	withValues, e := parseBoolParam(q, "includeValues")
	if e != nil {
		return e
	}
	name, customer := q.Get("name"), q.Get("customerId")
	page, next := s.keyOrder.page(s.store.Config().GetApiKeys(), pr, func(k *pb.ApiKey) bool {
		return strings.HasPrefix(k.GetName(), name) && (customer == "" || k.GetCustomerId() == customer)
	})
	out := listView[apiKeyView]{Item: make([]apiKeyView, 0, len(page)), Position: next}
	values := s.opener(r.Context())
	for _, k := range page {
		v := ""
		if withValues {
			if v, e = values.value(k); e != nil {
				return e
			}
		}
		out.Item = append(out.Item, keyView(k, v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getAPIKey(w http.ResponseWriter, r *http.Request) *apiError {
	withValue, e := parseBoolParam(r.URL.Query(), "includeValue")
	if e != nil {
		return e
	}
	k := s.store.Config().GetApiKeys()[r.PathValue("api_key")]
	if k == nil {
		return notFound(msgKeyNotFound)
	}
	v := ""
	if withValue {
		if v, e = s.opener(r.Context()).value(k); e != nil {
			return e
		}
	}
	writeJSON(w, http.StatusOK, keyView(k, v))
	return nil
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("api_key")
	if _, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_DeleteApiKey{DeleteApiKey: &pb.DeleteApiKey{Id: id, KeepUsage: true}}}); e != nil {
		return e
	}
	writeAccepted(w)
	return nil
}

// keyPatch is UpdateApiKey's patch table: replace of /description,
// /enabled, /name and /customerId only.
var keyPatch = patchTable[*pb.ApiKey]{
	{path: "/description", ops: opReplace, set: func(k *pb.ApiKey, _ []string, op patchOp) *apiError {
		k.Description = op.Value
		return checkDescription("API Key", op.Value)
	}},
	{path: "/enabled", ops: opReplace, set: func(k *pb.ApiKey, _ []string, op patchOp) *apiError {
		k.Enabled = patchBool(op)
		return nil
	}},
	{path: "/name", ops: opReplace, set: func(k *pb.ApiKey, _ []string, op patchOp) *apiError {
		k.Name = op.Value
		return checkName("API Key", op.Value)
	}},
	{path: "/customerId", ops: opReplace, set: func(k *pb.ApiKey, _ []string, op patchOp) *apiError {
		k.CustomerId = op.Value
		return checkCustomerID(op.Value)
	}},
}

// patchAPIKey applies UpdateApiKey's operations.
func patchAPIKey(k *pb.ApiKey, ops []patchOp) *apiError {
	return applyPatch(keyPatch, k, ops)
}

func (s *Server) updateAPIKey(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("api_key")
	ops, e := readPatch(w, r)
	if e != nil {
		return e
	}
	k, e := update(s, r.Context(),
		func(c *pb.Config) (*pb.ApiKey, uint64, *apiError) {
			k := c.GetApiKeys()[id]
			if k == nil {
				return nil, 0, notFound(msgKeyNotFound)
			}
			return k, k.GetRevision(), nil
		},
		func(k *pb.ApiKey, _ *pb.Config) *apiError { return patchAPIKey(k, ops) },
		func(k *pb.ApiKey, rev uint64) *pb.Command {
			return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: k, IfRevision: rev}}}
		})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, keyView(k, ""))
	return nil
}

// keyOrder is every key in GetApiKeys' order (newest first: creation time
// descending, then id), sorted once per set of keys. The configuration's
// key map is never changed once published, and a change that leaves the
// keys alone keeps the same map, so a page is a binary search and a walk
// of limit keys until the keys change.
type keyOrder struct {
	mu     sync.Mutex
	of     map[string]*pb.ApiKey // held, so that its address is not reused
	sorted []*pb.ApiKey
}

func keyCursor(k *pb.ApiKey) cursor { return cursor{-k.GetCreatedDate(), k.GetId()} }

// page returns the keys that match after pr's position, at most pr.limit,
// with the position of the next page ("" when this is the last).
func (o *keyOrder) page(keys map[string]*pb.ApiKey, pr pageRequest, match func(*pb.ApiKey) bool) ([]*pb.ApiKey, string) {
	o.mu.Lock()
	if o.of == nil || reflect.ValueOf(o.of).Pointer() != reflect.ValueOf(keys).Pointer() {
		sorted := make([]*pb.ApiKey, 0, len(keys))
		for _, k := range keys {
			sorted = append(sorted, k)
		}
		slices.SortFunc(sorted, func(a, b *pb.ApiKey) int { return keyCursor(a).compare(keyCursor(b)) })
		o.of, o.sorted = keys, sorted
	}
	sorted := o.sorted
	o.mu.Unlock()
	start := 0
	if pr.after != nil {
		start, _ = slices.BinarySearchFunc(sorted, *pr.after, func(k *pb.ApiKey, c cursor) int {
			if keyCursor(k).compare(c) <= 0 {
				return -1
			}
			return 1
		})
	}
	var page []*pb.ApiKey
	for i := start; i < len(sorted); i++ {
		if !match(sorted[i]) {
			continue
		}
		if len(page) == pr.limit {
			return page, keyCursor(page[len(page)-1]).encode()
		}
		page = append(page, sorted[i])
	}
	return page, ""
}
