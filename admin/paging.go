package admin

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/rules"
)

const (
	defaultPageLimit = 25
	maxPageLimit     = 500
)

// cursor is the place of an item in a listing: listings are ordered by
// (n, s) ascending, and a position names the last item a page returned, so
// paging stays exact when items are added or removed between pages.
type cursor struct {
	n int64
	s string
}

func (c cursor) compare(o cursor) int {
	if d := cmp.Compare(c.n, o.n); d != 0 {
		return d
	}
	return strings.Compare(c.s, o.s)
}

// encode gives the opaque position string of a cursor.
func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.n, 10) + ":" + c.s))
}

func decodeCursor(pos string) (cursor, bool) {
	if len(pos) > maxQueryLen {
		return cursor{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(pos)
	if err != nil {
		return cursor{}, false
	}
	ns, s, ok := strings.Cut(string(b), ":")
	if !ok {
		return cursor{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return cursor{}, false
	}
	return cursor{n: n, s: s}, true
}

// pageRequest is the position and limit query parameters of a listing.
type pageRequest struct {
	limit int
	after *cursor
}

func parsePage(q url.Values) (pageRequest, *apiError) {
	pr := pageRequest{limit: defaultPageLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return pr, badRequest("Invalid limit %q: it must be an integer from 1 to %d", truncate(v), maxPageLimit)
		}
		pr.limit = n
	}
	if v := q.Get("position"); v != "" {
		c, ok := decodeCursor(v)
		if !ok {
			return pr, badRequest("Invalid position %q: pass the position a previous page returned", truncate(v))
		}
		pr.after = &c
	}
	return pr, nil
}

// paginate sorts items by key and returns the page after pr.after, with the
// position of the next page ("" when this is the last page).
func paginate[T any](items []T, key func(T) cursor, pr pageRequest) ([]T, string) {
	slices.SortFunc(items, func(a, b T) int { return key(a).compare(key(b)) })
	start := 0
	if pr.after != nil {
		start, _ = slices.BinarySearchFunc(items, *pr.after, func(it T, c cursor) int {
			if key(it).compare(c) <= 0 {
				return -1
			}
			return 1
		})
	}
	end := min(start+pr.limit, len(items))
	page := items[start:end]
	if end < len(items) && len(page) > 0 {
		return page, key(page[len(page)-1]).encode()
	}
	return page, ""
}

// truncate shortens a user-supplied string for an error message.
func truncate(s string) string { return rules.Truncate(s) }

// writePage answers a listing the way every list handler does: it reads
// position and limit from q, orders items by key, and writes the page as
// {"item":[…],"position":"…"} with each item shown by view.
func writePage[T, V any](w http.ResponseWriter, q url.Values, items []T, key func(T) cursor, view func(T) (V, *apiError)) *apiError {
	pr, e := parsePage(q)
	if e != nil {
		return e
	}
	page, next := paginate(items, key, pr)
	out := listView[V]{Item: make([]V, 0, len(page)), Position: next}
	for _, it := range page {
		v, e := view(it)
		if e != nil {
			return e
		}
		out.Item = append(out.Item, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// shown adapts a view that cannot fail to writePage.
func shown[T, V any](view func(T) V) func(T) (V, *apiError) {
	return func(t T) (V, *apiError) { return view(t), nil }
}
