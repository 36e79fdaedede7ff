package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	pb "github.com/tollgate/tollgate/proto"
	"github.com/tollgate/tollgate/rules"
)

// csvRecord is one record of a CSV text and the line it starts on.
type csvRecord struct {
	line   int
	fields []string
}

// parseCSV reads the key file format of ImportApiKeys: comma-separated
// fields, records ending in LF or CRLF, blank lines skipped. A field may be
// quoted with "…" or '…' (the quote doubled inside stands for itself, and
// newlines are allowed), which is how UsagePlanIds carries a comma list.
// Spaces around fields are dropped. A UTF-8 byte order mark is skipped.
// encoding/csv does not read '…' quoting, which the original's key file
// format documents for UsagePlanIds, hence this reader.
func parseCSV(data []byte) ([]csvRecord, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, errors.New("the file is not UTF-8 text")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, errors.New("the file contains NUL bytes")
	}
	var out []csvRecord
	line := 1
	i := 0
	for i < len(data) {
		start := line
		var fields []string
		for {
			// Skip spaces before the field.
			for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
				i++
			}
			var field string
			if i < len(data) && (data[i] == '"' || data[i] == '\'') {
				q := data[i]
				i++
				var b strings.Builder
				closed := false
				for i < len(data) {
					c := data[i]
					if c == q {
						if i+1 < len(data) && data[i+1] == q {
							b.WriteByte(q)
							i += 2
							continue
						}
						i++
						closed = true
						break
					}
					if c == '\n' {
						line++
					}
					b.WriteByte(c)
					i++
				}
				if !closed {
					return nil, fmt.Errorf("line %d: a quoted field is not closed", start)
				}
				for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
					i++
				}
				if i < len(data) && data[i] != ',' && data[i] != '\n' && data[i] != '\r' {
					return nil, fmt.Errorf("line %d: unexpected %q after a quoted field", line, data[i])
				}
				field = b.String()
			} else {
				j := i
				for j < len(data) && data[j] != ',' && data[j] != '\n' && data[j] != '\r' {
					j++
				}
				field = strings.TrimRight(string(data[i:j]), " \t")
				i = j
			}
			fields = append(fields, field)
			if i < len(data) && data[i] == ',' {
				i++
				continue
			}
			break
		}
		// End of the record: CRLF, LF, a lone CR, or the end of the data.
		if i < len(data) && data[i] == '\r' {
			i++
		}
		if i < len(data) && data[i] == '\n' {
			i++
		}
		line++
		if len(fields) == 1 && fields[0] == "" {
			continue // a blank line
		}
		out = append(out, csvRecord{line: start, fields: fields})
	}
	return out, nil
}

// importColumns are the columns ImportApiKeys reads (lower case); others
// are ignored.
var importColumns = map[string]bool{"name": true, "key": true, "description": true, "enabled": true, "usageplanids": true}

// importRows turns a parsed key file into keys to import (without ids)
// and warnings about the rows that cannot be imported. It fails when the
// file has no usable header.
func importRows(recs []csvRecord) ([]*pb.ImportedKey, []string, error) {
	if len(recs) == 0 {
		return nil, nil, errors.New("the file is empty: it needs a header with the columns Name and Key")
	}
	col := map[string]int{}
	for i, h := range recs[0].fields {
		h = strings.ToLower(strings.TrimSpace(h))
		if !importColumns[h] {
			continue
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("line %d: the column %q appears twice in the header", recs[0].line, recs[0].fields[i])
		}
		col[h] = i
	}
	_, hasName := col["name"]
	_, hasKey := col["key"]
	if !hasName || !hasKey {
		return nil, nil, fmt.Errorf("line %d: the header must name the columns Name and Key (in any order and case)", recs[0].line)
	}
	var keys []*pb.ImportedKey
	var warnings []string
	byValue := map[string]int{} // key value -> index in keys
	for _, rec := range recs[1:] {
		warn := func(format string, args ...any) {
			warnings = append(warnings, fmt.Sprintf("line %d: ", rec.line)+fmt.Sprintf(format, args...))
		}
		if len(rec.fields) > len(recs[0].fields) {
			extra := rec.fields[len(recs[0].fields):]
			if strings.Join(extra, "") != "" {
				warn("the row has %d fields but the header has %d", len(rec.fields), len(recs[0].fields))
				continue
			}
		}
		get := func(name string) string {
			i, ok := col[name]
			if !ok || i >= len(rec.fields) {
				return ""
			}
			return rec.fields[i]
		}
		value := get("key")
		if value == "" {
			warn("the Key is empty")
			continue
		}
		if e := checkKeyValue(value); e != nil {
			warn("%s", e.msg)
			continue
		}
		name, desc := get("name"), get("description")
		if e := checkName("API Key", name); e != nil {
			warn("%s", e.msg)
			continue
		}
		if e := checkDescription("API Key", desc); e != nil {
			warn("%s", e.msg)
			continue
		}
		enabled := true
		switch v := strings.ToLower(get("enabled")); v {
		case "", "true":
		case "false":
			enabled = false
		default:
			warn("Enabled is %q: want true or false", truncate(get("enabled")))
			continue
		}
		var plans []string
		badPlan := ""
		for _, p := range strings.Split(get("usageplanids"), ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if !rules.IsPlanID(p) {
				badPlan = p
				break
			}
			plans = append(plans, p)
		}
		if badPlan != "" {
			warn("invalid usage plan id %q", truncate(badPlan))
			continue
		}
		k := &pb.ImportedKey{
			Key:          &pb.ApiKey{Value: value, Name: name, Description: desc, Enabled: enabled},
			UsagePlanIds: plans,
			Line:         int32(min(rec.line, 1<<30)),
		}
		if prev, ok := byValue[value]; ok {
			warnings = append(warnings, fmt.Sprintf("line %d: the same Key appears again on line %d, which is imported instead", keys[prev].Line, rec.line))
			keys[prev] = k
			continue
		}
		byValue[value] = len(keys)
		keys = append(keys, k)
	}
	return keys, warnings, nil
}

type importResponse struct {
	IDs      []string `json:"ids"`
	Warnings []string `json:"warnings"`
}

// importAPIKeys is ImportApiKeys: POST /apikeys?mode=import&format=csv.
func (s *Server) importAPIKeys(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	switch f := q.Get("format"); f {
	case "csv":
	case "":
		return badRequest("The format parameter is required: format=csv")
	default:
		return badRequest("Invalid format %q: the only format is csv", truncate(f))
	}
	failOnWarnings, e := parseBoolParam(q, "failonwarnings")
	if e != nil {
		return e
	}
	body, e := readBody(w, r)
	if e != nil {
		return e
	}
	recs, err := parseCSV(body)
	if err != nil {
		return badRequest("Invalid API key file: %v", err)
	}
	keys, warnings, err := importRows(recs)
	if err != nil {
		return badRequest("Invalid API key file: %v", err)
	}
	if failOnWarnings && len(warnings) > 0 {
		return badRequest("Import failed: %s", strings.Join(warnings, "; "))
	}
	out := importResponse{IDs: []string{}, Warnings: append([]string{}, warnings...)}
	if len(keys) > 0 {
		if e := s.sealImport(r.Context(), keys); e != nil {
			return e
		}
		res, e := s.apply(r.Context(), &pb.Command{Body: &pb.Command_ImportApiKeys{ImportApiKeys: &pb.ImportApiKeys{
			Keys: keys, FailOnWarnings: failOnWarnings,
		}}})
		if e != nil {
			return e
		}
		out.IDs = append(out.IDs, res.GetIds()...)
		out.Warnings = append(out.Warnings, res.GetWarnings()...)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// sealImport gives each key to import an id and replaces its value with
// the lookup hash and sealed form. A key not sealed yet that holds one of
// the values is sealed first, so that the state machine finds it by its
// lookup hash and the import overwrites it, as it would any key.
func (s *Server) sealImport(ctx context.Context, keys []*pb.ImportedKey) *apiError {
	sk, e := s.sealingKeys(ctx)
	if e != nil {
		return e
	}
	cfg := s.store.Config()
	plain := plainHolders(cfg)
	var first []*pb.SealedKey
	used := map[string]bool{}
	for _, ik := range keys {
		k := ik.Key
		if id, ok := plain[k.Value]; ok {
			first = append(first, sk.SealAPIKey(id, k.Value))
		}
		// Used only when the value is new; a known value keeps its key's id.
		k.Id = freshID(newKeyID, func(id string) bool { return used[id] || keyIDTaken(cfg, id) })
		used[k.Id] = true
		sealed := sk.SealAPIKey(k.Id, k.Value)
		k.Value, k.ValueLookup, k.ValueSealed = "", sealed.ValueLookup, sealed.ValueSealed
	}
	if len(first) > 0 {
		if _, e := s.apply(ctx, &pb.Command{Body: &pb.Command_SealApiKeys{SealApiKeys: &pb.SealApiKeys{Keys: first}}}); e != nil {
			return e
		}
	}
	return nil
}
