package admin

import (
	"context"
	"maps"
	"net/http"
	"strings"

	pb "github.com/tollgate/tollgate/proto"
)

// Tags: TagResource, UntagResource and GetTags on usage plans, API keys,
// REST APIs and stages, named by the ARN the original gives them
// (arn:aws:apigateway:{region}::/usageplans/{id}, …/apikeys/{id},
// …/restapis/{id}, …/restapis/{id}/stages/{name}), URL-encoded into the
// path as the SDKs and the CLI send it. Any partition and region name the
// same object: a cluster is one region.

// tagTarget is the object an ARN names.
type tagTarget struct {
	kind  string // "usageplans", "apikeys", "restapis" or "stages"
	id    string // the plan, key or API id
	stage string // kind "stages"
}

const msgBadARN = "Invalid ARN specified in the request"

// parseTagARN reads a taggable resource's ARN.
func parseTagARN(arn string) (tagTarget, *apiError) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "apigateway" || parts[4] != "" {
		return tagTarget{}, badRequest(msgBadARN)
	}
	segs := strings.Split(strings.TrimPrefix(parts[5], "/"), "/")
	if !strings.HasPrefix(parts[5], "/") {
		return tagTarget{}, badRequest(msgBadARN)
	}
	t := tagTarget{kind: segs[0]}
	switch {
	case len(segs) == 2 && (t.kind == "usageplans" || t.kind == "apikeys" || t.kind == "restapis"):
		t.id = segs[1]
	case len(segs) == 4 && t.kind == "restapis" && segs[2] == "stages":
		t.kind, t.id, t.stage = "stages", segs[1], segs[3]
	default:
		return tagTarget{}, badRequest(msgBadARN)
	}
	if !checkPathID(t.id) {
		return tagTarget{}, notFound(t.notFound())
	}
	return t, nil
}

func (t tagTarget) notFound() string {
	switch t.kind {
	case "usageplans":
		return msgPlanNotFound
	case "apikeys":
		return msgKeyNotFound
	case "restapis":
		return msgAPINotFound
	}
	return msgStageNotFound
}

// tagsOf returns the tags of the object t names.
func (t tagTarget) tagsOf(c *pb.Config) (map[string]string, *apiError) {
	var tags map[string]string
	found := false
	switch t.kind {
	case "usageplans":
		p := c.GetUsagePlans()[t.id]
		found, tags = p != nil, p.GetTags()
	case "apikeys":
		k := c.GetApiKeys()[t.id]
		found, tags = k != nil, k.GetTags()
	case "restapis":
		a := c.GetRestApis()[t.id]
		found, tags = a != nil, a.GetTags()
	default:
		st := c.GetStages()[t.id+"/"+t.stage]
		found, tags = st != nil, st.GetTags()
	}
	if !found {
		return nil, notFound(t.notFound())
	}
	return tags, nil
}

// retag changes the tags of the object t names with change, which edits
// a copy of them, and checks the result.
func (s *Server) retag(ctx context.Context, t tagTarget, change func(map[string]string)) *apiError {
	edit := func(tags *map[string]string) *apiError {
		if *tags == nil {
			*tags = map[string]string{}
		}
		change(*tags)
		if len(*tags) == 0 {
			*tags = nil
		}
		return checkTags(*tags)
	}
	var e *apiError
	switch t.kind {
	case "usageplans":
		_, e = update(s, ctx,
			func(c *pb.Config) (*pb.UsagePlan, uint64, *apiError) {
				p := c.GetUsagePlans()[t.id]
				if p == nil {
					return nil, 0, notFound(msgPlanNotFound)
				}
				return p, p.GetRevision(), nil
			},
			func(p *pb.UsagePlan, _ *pb.Config) *apiError { return edit(&p.Tags) },
			func(p *pb.UsagePlan, rev uint64) *pb.Command {
				return &pb.Command{Body: &pb.Command_PutUsagePlan{PutUsagePlan: &pb.PutUsagePlan{Plan: p, IfRevision: rev}}}
			})
	case "apikeys":
		_, e = update(s, ctx,
			func(c *pb.Config) (*pb.ApiKey, uint64, *apiError) {
				k := c.GetApiKeys()[t.id]
				if k == nil {
					return nil, 0, notFound(msgKeyNotFound)
				}
				return k, k.GetRevision(), nil
			},
			func(k *pb.ApiKey, _ *pb.Config) *apiError { return edit(&k.Tags) },
			func(k *pb.ApiKey, rev uint64) *pb.Command {
				return &pb.Command{Body: &pb.Command_PutApiKey{PutApiKey: &pb.PutApiKey{Key: k, IfRevision: rev}}}
			})
	case "restapis":
		_, e = update(s, ctx,
			func(c *pb.Config) (*pb.RestApi, uint64, *apiError) {
				a := c.GetRestApis()[t.id]
				if a == nil {
					return nil, 0, notFound(msgAPINotFound)
				}
				return a, a.GetRevision(), nil
			},
			func(a *pb.RestApi, _ *pb.Config) *apiError { return edit(&a.Tags) },
			func(a *pb.RestApi, rev uint64) *pb.Command {
				return &pb.Command{Body: &pb.Command_UpdateRestApi{UpdateRestApi: &pb.UpdateRestApi{Api: a, IfRevision: rev}}}
			})
	default:
		_, e = update(s, ctx,
			func(c *pb.Config) (*pb.Stage, uint64, *apiError) {
				st := c.GetStages()[t.id+"/"+t.stage]
				if st == nil {
					return nil, 0, notFound(msgStageNotFound)
				}
				return st, st.GetRevision(), nil
			},
			func(st *pb.Stage, _ *pb.Config) *apiError { return edit(&st.Tags) },
			func(st *pb.Stage, rev uint64) *pb.Command {
				return &pb.Command{Body: &pb.Command_PutStage{PutStage: &pb.PutStage{Stage: st, IfRevision: rev}}}
			})
	}
	return e
}

// tagResource is TagResource: PUT /tags/{resource_arn} {"tags":{…}},
// answered 204. Given tags are added or replace those of the same key.
func (s *Server) tagResource(w http.ResponseWriter, r *http.Request) *apiError {
	var req struct {
		Tags map[string]string `json:"tags"`
	}
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	t, e := parseTagARN(r.PathValue("resource_arn"))
	if e != nil {
		return e
	}
	if e := checkTags(req.Tags); e != nil {
		return e
	}
	if e := s.retag(r.Context(), t, func(tags map[string]string) { maps.Copy(tags, req.Tags) }); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// untagResource is UntagResource: DELETE /tags/{resource_arn}?tagKeys=…
// (repeated), answered 204. Keys the object does not have are ignored.
func (s *Server) untagResource(w http.ResponseWriter, r *http.Request) *apiError {
	t, e := parseTagARN(r.PathValue("resource_arn"))
	if e != nil {
		return e
	}
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return badRequest("tagKeys is required")
	}
	if e := s.retag(r.Context(), t, func(tags map[string]string) {
		for _, k := range keys {
			delete(tags, k)
		}
	}); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getTags is GetTags: GET /tags/{resource_arn} → {"tags":{…}}. Every tag
// fits one page (an object holds at most 50), so position and limit are
// read and checked but never cut the answer.
func (s *Server) getTags(w http.ResponseWriter, r *http.Request) *apiError {
	if _, e := parsePage(r.URL.Query()); e != nil {
		return e
	}
	t, e := parseTagARN(r.PathValue("resource_arn"))
	if e != nil {
		return e
	}
	tags, e := t.tagsOf(s.store.Config())
	if e != nil {
		return e
	}
	out := struct {
		Tags map[string]string `json:"tags"`
	}{Tags: maps.Clone(tags)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
