// Command caddy is the load balancer in front of Tollgate's data planes: the
// standard Caddy main with its standard modules, built as a static binary so
// that its image can start from scratch.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
