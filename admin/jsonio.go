package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

const (
	// maxBodyBytes caps every request body.
	maxBodyBytes = 1 << 20
	// maxJSONDepth caps the nesting of a JSON body.
	maxJSONDepth = 32
)

// readBody reads a request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	b, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "BadRequestException",
				msg: fmt.Sprintf("Request body is larger than %d bytes", maxBodyBytes)}
		}
		return nil, badRequest("Could not read the request body: %v", err)
	}
	return b, nil
}

// readJSON reads a request body into v (a pointer to a struct) strictly.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *apiError {
	b, e := readBody(w, r)
	if e != nil {
		return e
	}
	if err := decodeStrict(b, v); err != nil {
		return badRequest("Invalid request body: %v", err)
	}
	return nil
}

// decodeStrict decodes one JSON value into v. Beyond encoding/json it
// refuses: field names that are not exactly those of v's type (the standard
// decoder would match "NAME" to "name"), duplicate names, nesting deeper
// than maxJSONDepth and anything after the value. An empty body reads as {}.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return errors.New("internal: decode target is not a pointer")
	}
	c := &jsonChecker{dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber() // numbers are checked by the decoder below, with the field named
	if err := c.value(t.Elem(), "", 0); err != nil {
		return err
	}
	if _, err := c.dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// jsonChecker walks the tokens of a JSON text alongside the Go type it will
// be decoded into.
type jsonChecker struct {
	dec *json.Decoder
}

func (c *jsonChecker) value(t reflect.Type, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("JSON nested more than %d levels deep at %s", maxJSONDepth, where(path))
	}
	tok, err := c.dec.Token()
	if err != nil {
		return syntaxError(err, c.dec)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: its type is checked by the decoder
	}
	t = deref(t)
	switch d {
	case '{':
		return c.object(t, path, depth)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; c.dec.More(); i++ {
			if err := c.value(elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
		if _, err := c.dec.Token(); err != nil {
			return syntaxError(err, c.dec)
		}
		return nil
	}
	return fmt.Errorf("malformed JSON at offset %d", c.dec.InputOffset())
}

func (c *jsonChecker) object(t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = structFields(t)
	}
	seen := map[string]bool{}
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return syntaxError(err, c.dec)
		}
		key, _ := tok.(string)
		p := key
		if path != "" {
			p = path + "." + key
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", p)
		}
		seen[key] = true
		var ft reflect.Type
		switch {
		case fields != nil:
			f, ok := fields[key]
			if !ok {
				return fmt.Errorf("unknown field %q", p)
			}
			ft = f
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		if err := c.value(ft, p, depth+1); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil {
		return syntaxError(err, c.dec)
	}
	return nil
}

// deref strips pointers; it returns nil for types whose content is free
// (interfaces, json.RawMessage) so that nothing inside them is checked.
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t == rawMessageType || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// structFields maps the JSON names of a struct's exported fields to their
// types. Request types use no embedding.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func where(path string) string {
	if path == "" {
		return "the top level"
	}
	return strconv.Quote(path)
}

func syntaxError(err error, dec *json.Decoder) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the JSON text ends too early")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at offset %d: %v", se.Offset, se)
	}
	return fmt.Errorf("malformed JSON at offset %d: %v", dec.InputOffset(), err)
}

// describeDecodeError turns an encoding/json error into a message naming
// the field and what it must be.
func describeDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the body"
		} else {
			field = strconv.Quote(field)
		}
		got := te.Value
		if strings.HasPrefix(got, "number ") && isIntKind(te.Type) {
			return fmt.Errorf("field %s must be an integer from %s, not %s", field, intRange(te.Type), strings.TrimPrefix(got, "number "))
		}
		return fmt.Errorf("field %s must be %s, not %s", field, kindName(te.Type), got)
	}
	return err
}

func isIntKind(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func intRange(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int32:
		return "-2147483648 to 2147483647"
	case reflect.Int64, reflect.Int:
		return "-9223372036854775808 to 9223372036854775807"
	}
	return "its range"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return kindName(t.Elem())
	}
	if isIntKind(t) {
		return "an integer"
	}
	return t.String()
}
