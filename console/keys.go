package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

type keysData struct {
	Name     string // the name prefix searched for
	Keys     []apiKey
	Next     string // the next page's position, if any
	Imported *importResult
}

type importResult struct {
	IDs      []string `json:"ids"`
	Warnings []string `json:"warnings"`
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request) {
	c.showKeys(w, r, http.StatusOK, "")
}

func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.showKeysImported(w, r, status, msg, nil)
}

func (c *Console) showKeysImported(w http.ResponseWriter, r *http.Request, status int, msg string, imported *importResult) {
	q := r.URL.Query()
	d := keysData{Name: q.Get("name"), Imported: imported}
	p := url.Values{"limit": {"100"}}
	if d.Name != "" {
		p.Set("name", d.Name)
	}
	if pos := q.Get("position"); pos != "" {
		p.Set("position", pos)
	}
	var keys list[apiKey]
	if a := c.get(r, "/apikeys?"+p.Encode(), &keys); a != nil {
		c.fail(w, r, a)
		return
	}
	d.Keys, d.Next = keys.Item, keys.Position
	c.render(w, r, "keys", status, view{Title: "API keys", Nav: "keys", Error: msg, Data: d})
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	f := r.PostForm
	body := map[string]any{"name": f.Get("name"), "enabled": f.Get("enabled") == "true"}
	for _, k := range []string{"description", "customerId", "value"} {
		if v := f.Get(k); v != "" {
			body[k] = v
		}
	}
	if a := c.send(r, http.MethodPost, "/apikeys", body); a != nil {
		c.formFailed(w, r, a, c.showKeys)
		return
	}
	seeOther(w, r, Prefix+"keys?"+url.Values{"name": {f.Get("name")}}.Encode())
}

// importKeys sends a CSV file (uploaded, or pasted) to ImportApiKeys and
// shows the ids it made and its warnings, one per line of the file.
func (c *Console) importKeys(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	text := r.PostFormValue("csv")
	if f, _, err := r.FormFile("file"); err == nil {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			c.showKeys(w, r, http.StatusBadRequest, "The file could not be read: "+err.Error())
			return
		}
		if len(b) > 0 {
			text = string(b)
		}
	}
	q := url.Values{"mode": {"import"}, "format": {"csv"}}
	if r.PostFormValue("failOnWarnings") == "true" {
		q.Set("failonwarnings", "true")
	}
	a := c.call(r, http.MethodPost, "/apikeys?"+q.Encode(), []byte(text), "text/csv", "application/json")
	if !a.ok() {
		c.formFailed(w, r, a, c.showKeys)
		return
	}
	var res importResult
	if err := a.decode(&res); err != nil {
		c.showKeys(w, r, http.StatusBadGateway, err.Error())
		return
	}
	c.showKeysImported(w, r, http.StatusOK, "", &res)
}

func (c *Console) setKeyEnabled(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	body := map[string]any{"patchOperations": []map[string]string{{"op": "replace", "path": "/enabled", "value": r.PostFormValue("enabled")}}}
	if a := c.send(r, http.MethodPatch, "/apikeys/"+url.PathEscape(r.PathValue("key")), body); a != nil {
		c.formFailed(w, r, a, c.showKeys)
		return
	}
	back := Prefix + "keys"
	if n := r.PostFormValue("back"); n != "" {
		back += "?" + url.Values{"name": {n}}.Encode()
	}
	seeOther(w, r, back)
}

// keyValue answers {"value": ...} for the reveal button, or the admin
// API's {"message": ...} with its status.
func (c *Console) keyValue(w http.ResponseWriter, r *http.Request) {
	var k struct {
		Value string `json:"value"`
	}
	w.Header().Set("Content-Type", "application/json")
	if a := c.get(r, "/apikeys/"+url.PathEscape(r.PathValue("key"))+"?includeValue=true", &k); a != nil {
		w.WriteHeader(a.status)
		_, _ = w.Write(errorBody(a.message()))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"value": strings.TrimSpace(k.Value)})
}
