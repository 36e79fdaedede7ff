package admin

import (
	"strings"
)

// PATCH handling as data. Each resource has one table: a row names a path
// (as the original lists it in its errors), the ops that path takes, and
// how to set and how to remove what it names. applyPatch runs a body's
// operations through a table, and the "Must be one of" list of a refused
// path is derived from the same table, so what is accepted and what the
// error lists cannot drift apart.

// opSet is a set of operations.
type opSet uint8

const (
	opAdd opSet = 1 << iota
	opReplace
	opRemove
	opMove
	opCopy
	opTest

	opEvery = opAdd | opReplace | opRemove | opMove | opCopy | opTest
)

func opBit(op string) opSet {
	switch op {
	case "add":
		return opAdd
	case "replace":
		return opReplace
	case "remove":
		return opRemove
	case "move":
		return opMove
	case "copy":
		return opCopy
	case "test":
		return opTest
	}
	return 0
}

// patchRule is one row of a patch table.
//
// path is the path as the original lists it. match, when set, is the
// pattern matched instead: segments separated by "/", where "*" matches
// one segment and "**" one or more (at most one "**" per pattern); a row
// without match matches path literally. The segments "*" and "**" match
// are the rule's arguments, in order ("**" joined with "/" as sent).
//
// ops is what the path takes; listed names the other ops whose refusals
// list the path all the same (see listedForEveryOp). No row takes move,
// copy or test.
//
// set handles add and replace, remove handles remove; a handler is nil
// when ops does not name its operations.
type patchRule[T any] struct {
	path   string
	match  string
	ops    opSet
	listed opSet
	set    func(t T, args []string, op patchOp) *apiError
	remove func(t T, args []string, op patchOp) *apiError
}

// patchTable is the rows of one resource, tried in order: the first row
// whose pattern matches a path decides (so literal rows come before the
// patterns that would also match them).
type patchTable[T any] []patchRule[T]

// listedForEveryOp returns tb with every path listed in the refusal of
// any op, whether the path takes the op or not: the original's
// UpdateResource, UpdateMethod and UpdateIntegration answer so.
func listedForEveryOp[T any](tb patchTable[T]) patchTable[T] {
	for i := range tb {
		tb[i].listed = opEvery
	}
	return tb
}

// paths lists the paths that take op or are listed for it, in table
// order: the original's "Must be one of" list.
func (tb patchTable[T]) paths(op string) []string {
	bit := opBit(op)
	var out []string
	for _, r := range tb {
		if bit != 0 && (r.ops|r.listed)&bit != 0 {
			out = append(out, r.path)
		}
	}
	return out
}

// find returns the row whose pattern matches path, and its arguments.
func (tb patchTable[T]) find(path string) (*patchRule[T], []string) {
	for i := range tb {
		pat := tb[i].match
		if pat == "" {
			if path == tb[i].path {
				return &tb[i], nil
			}
			continue
		}
		if args, ok := matchPattern(pat, path); ok {
			return &tb[i], args
		}
	}
	return nil, nil
}

// applyOne applies one operation to t.
func (tb patchTable[T]) applyOne(t T, op patchOp) *apiError {
	r, args := tb.find(op.Path)
	bit := opBit(op.Op)
	if r == nil || bit == 0 || r.ops&bit == 0 {
		return badPatchPath(op, tb.paths(op.Op))
	}
	if bit == opRemove {
		return r.remove(t, args, op)
	}
	return r.set(t, args, op)
}

// applyPatch checks every operation's name, then applies them in order to
// t. It stops at the first refusal; the caller validates the result as a
// whole and throws t away when anything is refused.
func applyPatch[T any](tb patchTable[T], t T, ops []patchOp) *apiError {
	if e := checkPatchOps(ops); e != nil {
		return e
	}
	for _, op := range ops {
		if e := tb.applyOne(t, op); e != nil {
			return e
		}
	}
	return nil
}

// matchPattern matches path against pat (see patchRule) and returns the
// matched segments.
func matchPattern(pat, path string) ([]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	ps := strings.Split(pat[1:], "/")
	ss := strings.Split(path[1:], "/")
	var args []string
	for i, p := range ps {
		if p != "**" {
			continue
		}
		// The segments before and after "**" match one to one; "**" takes
		// what is left, at least one segment.
		after := len(ps) - i - 1
		if len(ss) < len(ps) {
			return nil, false
		}
		head, ok := matchSegments(ps[:i], ss[:i])
		if !ok {
			return nil, false
		}
		tail, ok := matchSegments(ps[i+1:], ss[len(ss)-after:])
		if !ok {
			return nil, false
		}
		args = append(args, head...)
		args = append(args, strings.Join(ss[i:len(ss)-after], "/"))
		return append(args, tail...), true
	}
	if len(ps) != len(ss) {
		return nil, false
	}
	return matchSegments(ps, ss)
}

func matchSegments(ps, ss []string) ([]string, bool) {
	var args []string
	for i, p := range ps {
		switch {
		case p == "*":
			args = append(args, ss[i])
		case p != ss[i]:
			return nil, false
		}
	}
	return args, true
}
