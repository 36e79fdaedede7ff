package admin

import "github.com/tollgate/tollgate/rules"

// isAlnum is the key value alphabet, which package rules holds.
func isAlnum(s string) bool { return rules.IsAlnum(s) }
