package console

import (
	"net/http"
	"strings"
)

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, "login", status, view{Title: "Sign in", Error: msg})
}

// login checks the token against the admin API (GET /cluster, which any
// role may read) exactly as a bearer header, and keeps it in the token
// cookie. The session's CSRF token is made anew.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	probe := r.Clone(r.Context())
	probe.Header = r.Header.Clone()
	probe.Header.Del("Cookie")
	if tok != "" {
		probe.AddCookie(&http.Cookie{Name: tokenCookie, Value: tok})
	}
	if a := c.call(probe, http.MethodGet, "/cluster", nil, "", "application/json"); a.status == http.StatusForbidden {
		c.showLogin(w, r, a.status, a.message())
		return
	}
	if tok != "" {
		http.SetCookie(w, cookie(r, tokenCookie, tok, 0))
	}
	newCSRF(w, r)
	seeOther(w, r, Prefix)
}

// logout forgets the token and starts a new session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if why := checkPost(w, r); why != "" {
		c.refuse(w, r, why)
		return
	}
	http.SetCookie(w, cookie(r, tokenCookie, "", -1))
	newCSRF(w, r)
	seeOther(w, r, Prefix+"login")
}
