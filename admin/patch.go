package admin

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// patchOp is one operation of a PATCH body, as the original's PatchOperation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
	From  string `json:"from"`
}

type patchRequest struct {
	PatchOperations []patchOp `json:"patchOperations"`
}

var patchOpNames = map[string]bool{"add": true, "remove": true, "replace": true, "move": true, "copy": true, "test": true}

// readPatch reads a PATCH body and checks every op name.
func readPatch(w http.ResponseWriter, r *http.Request) ([]patchOp, *apiError) {
	var req patchRequest
	if e := readJSON(w, r, &req); e != nil {
		return nil, e
	}
	return req.PatchOperations, checkPatchOps(req.PatchOperations)
}

func checkPatchOps(ops []patchOp) *apiError {
	if len(ops) > maxPatchOps {
		return badRequest("Too many patch operations: at most %d are allowed", maxPatchOps)
	}
	for _, op := range ops {
		if !patchOpNames[op.Op] {
			return badRequest("Invalid patch operation %q specified. Must be one of: [add, remove, replace, move, copy, test]", truncate(op.Op))
		}
	}
	return nil
}

// badPatchPath is the original's answer to a path an op cannot take (the
// double space is the original's).
func badPatchPath(op patchOp, allowed []string) *apiError {
	return badRequest("Invalid patch path  '%s' specified for op '%s'. Must be one of: [%s]",
		truncate(op.Path), op.Op, strings.Join(allowed, ", "))
}

// Values of patch operations are strings; these read them.

func patchInt(op patchOp, lo, hi int64) (int64, *apiError) {
	n, err := strconv.ParseInt(strings.TrimSpace(op.Value), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("Invalid value %q for %s: want an integer from %d to %d", truncate(op.Value), op.Path, lo, hi)
	}
	return n, nil
}

func patchRate(op patchOp) (float64, *apiError) {
	f, err := strconv.ParseFloat(strings.TrimSpace(op.Value), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxRateLimit {
		return 0, badRequest("Invalid value %q for %s: want a number from 0 to %g", truncate(op.Value), op.Path, float64(maxRateLimit))
	}
	return f, nil
}

func patchBurst(op patchOp) (int32, *apiError) {
	n, e := patchInt(op, 0, math.MaxInt32)
	return int32(n), e
}

// patchBool reads a boolean the way the original does: "true" in any case
// is true, anything else is false.
func patchBool(op patchOp) bool {
	return strings.EqualFold(strings.TrimSpace(op.Value), "true")
}

// patchStrictBool reads "true" or "false" (any case) and refuses others.
func patchStrictBool(op patchOp) (bool, *apiError) {
	switch strings.ToLower(strings.TrimSpace(op.Value)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("Invalid value %q for %s: want true or false", truncate(op.Value), op.Path)
}

// unescapePointer decodes a JSON Pointer segment: "~1" is "/", "~0" is "~".
func unescapePointer(seg string) (string, error) {
	if !strings.Contains(seg, "~") {
		return seg, nil
	}
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] != '~' {
			b.WriteByte(seg[i])
			continue
		}
		if i+1 >= len(seg) || (seg[i+1] != '0' && seg[i+1] != '1') {
			return "", fmt.Errorf("invalid escape in %q: ~ must be followed by 0 or 1", seg)
		}
		if seg[i+1] == '1' {
			b.WriteByte('/')
		} else {
			b.WriteByte('~')
		}
		i++
	}
	return b.String(), nil
}
