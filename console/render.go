package console

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	// date shows epoch seconds as a UTC date and time.
	"date": func(sec int64) string {
		if sec == 0 {
			return ""
		}
		return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04")
	},
	"join": strings.Join,
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string // the menu entry to highlight
	CSRF     string
	SignedIn bool
	Error    string     // the admin API's message for a refused form
	Form     url.Values // the refused form's values, to show them again
	Data     any
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/{$}", c.overview)
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.logout)
	m.HandleFunc("GET /console/apis", c.apisPage)
	m.HandleFunc("GET /console/plans", c.plansPage)
	m.HandleFunc("POST /console/plans", c.createPlan)
	m.HandleFunc("GET /console/plans/{plan}", c.planPage)
	m.HandleFunc("POST /console/plans/{plan}/keys", c.addPlanKey)
	m.HandleFunc("POST /console/plans/{plan}/keys/{key}/remove", c.removePlanKey)
	m.HandleFunc("GET /console/keys", c.keysPage)
	m.HandleFunc("POST /console/keys", c.createKey)
	m.HandleFunc("POST /console/keys/import", c.importKeys)
	m.HandleFunc("POST /console/keys/{key}/enabled", c.setKeyEnabled)
	m.HandleFunc("GET /console/keys/{key}/value", c.keyValue)
	m.HandleFunc("GET /console/usage", c.usagePage)
	m.HandleFunc("POST /console/usage/extend", c.extendUsage)
	m.HandleFunc("GET /console/usage/export", c.exportUsage)
	c.mux = m
}

// render writes a page. Form values of a refused post are shown again.
func (c *Console) render(w http.ResponseWriter, r *http.Request, page string, status int, v view) {
	v.CSRF = csrfToken(w, r)
	v.SignedIn = token(r) != ""
	if r.Method == http.MethodPost {
		v.Form = r.PostForm
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, v); err != nil {
		c.log.Error("console: render a page", "page", page, "err", err)
		http.Error(w, "The page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail answers a page whose admin call was refused: the login form when
// the caller has no valid credential, the admin API's message otherwise.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, a *answer) {
	if a.needsLogin() {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	c.render(w, r, "error", a.status, view{Title: "Error", Error: a.message()})
}

// refuse answers a form post that failed its CSRF check.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, why string) {
	c.render(w, r, "error", http.StatusForbidden, view{Title: "Refused", Error: why})
}

// seeOther ends a successful form post.
func seeOther(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}
