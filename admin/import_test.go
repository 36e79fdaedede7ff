package admin

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseCSV(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want []csvRecord
		err  string
	}{
		{"plain", "a,b\nc,d\n", []csvRecord{{1, []string{"a", "b"}}, {2, []string{"c", "d"}}}, ""},
		{"crlf and bom", "\xef\xbb\xbfa,b\r\nc,d", []csvRecord{{1, []string{"a", "b"}}, {2, []string{"c", "d"}}}, ""},
		{"blank lines", "a\n\n\nb\n", []csvRecord{{1, []string{"a"}}, {4, []string{"b"}}}, ""},
		{"double quotes", `a,"x,y",c` + "\n", []csvRecord{{1, []string{"a", "x,y", "c"}}}, ""},
		{"single quotes", "a,'x,y',c\n", []csvRecord{{1, []string{"a", "x,y", "c"}}}, ""},
		{"doubled quote", `"say ""hi""",'it''s'`, []csvRecord{{1, []string{`say "hi"`, "it's"}}}, ""},
		{"spaces", "  a , b  ,\t'c' \n", []csvRecord{{1, []string{"a", "b", "c"}}}, ""},
		{"apostrophe inside", "O'Brien,x\n", []csvRecord{{1, []string{"O'Brien", "x"}}}, ""},
		{"newline in quotes", "\"a\nb\",c\nd\n", []csvRecord{{1, []string{"a\nb", "c"}}, {3, []string{"d"}}}, ""},
		{"empty fields", ",,\n", []csvRecord{{1, []string{"", "", ""}}}, ""},
		{"unclosed", "a,\"b\nc\n", nil, "line 1: a quoted field is not closed"},
		{"junk after quote", `"a"b,c`, nil, `line 1: unexpected 'b' after a quoted field`},
		{"not utf8", "a,\xff\n", nil, "the file is not UTF-8 text"},
		{"nul", "a,\x00\n", nil, "the file contains NUL bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCSV([]byte(c.in))
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

const (
	val1 = "abcdef1234ghijklmnop8901234567"
	val2 = "abcdef1234ghijklmnop0123456789"
	val3 = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
)

func TestImportAPIKeys(t *testing.T) {
	e := newEnv(t)
	api := e.api("pets")
	e.stage(api, "prod")
	e.stage(api, "dev")
	p1 := e.plan(map[string]any{"name": "p1", "apiStages": []map[string]any{{"apiId": api, "stage": "prod"}}})
	p2 := e.plan(map[string]any{"name": "p2", "apiStages": []map[string]any{{"apiId": api, "stage": "dev"}}})

	// Any case and order of columns, unknown columns ignored, both quote
	// styles, Enabled defaults to true; octet-stream is fine.
	csvText := "Extra,KEY,name,Description,enabled,UsagePlanIds\n" +
		"x," + val1 + ",importedKey_1,firstone,tRuE," + p1 + "\n" +
		"y," + val2 + ",importedKey_2,secondone,,\"" + p1 + "," + p2 + "\"\n" +
		"z," + val3 + ",importedKey_3,,FALSE,'" + p2 + "'\n"
	r := e.do("POST", "/apikeys?mode=import&format=csv&failonwarnings=false", csvText, "Content-Type", "application/octet-stream")
	if r.code != 201 {
		t.Fatalf("import: %d %s", r.code, r.body)
	}
	got := r.json(t)
	ids := got["ids"].([]any)
	if len(ids) != 3 || len(got["warnings"].([]any)) != 0 {
		t.Fatalf("import answered %s", r.body)
	}
	cfg := e.store.Config()
	k1, k2, k3 := cfg.GetApiKeys()[ids[0].(string)], cfg.GetApiKeys()[ids[1].(string)], cfg.GetApiKeys()[ids[2].(string)]
	if e.value(k1) != val1 || k1.GetName() != "importedKey_1" || k1.GetDescription() != "firstone" || !k1.GetEnabled() ||
		!k2.GetEnabled() || k3.GetEnabled() || e.value(k3) != val3 {
		t.Fatalf("imported keys %v / %v / %v", k1, k2, k3)
	}
	inPlan := func(plan, key string) bool { _, ok := e.store.Config().GetPlanKeys()[plan].GetKeys()[key]; return ok }
	if !inPlan(p1, k1.Id) || !inPlan(p1, k2.Id) || !inPlan(p2, k2.Id) || !inPlan(p2, k3.Id) || inPlan(p1, k3.Id) {
		t.Fatal("imported keys are not attached as the file says")
	}

	// Importing the same value again overwrites the key and keeps its id.
	r = e.do("POST", "/apikeys?mode=import&format=csv", "name,key,enabled\nrenamed,"+val1+",false\n")
	got = r.json(t)
	if r.code != 201 || got["ids"].([]any)[0] != k1.Id {
		t.Fatalf("re-import: %d %s", r.code, r.body)
	}
	if k := e.store.Config().GetApiKeys()[k1.Id]; k.GetName() != "renamed" || k.GetEnabled() {
		t.Fatalf("re-imported key %v", k)
	}

	// Bad rows become warnings naming their lines; good rows are imported.
	bad := "name,key,enabled,usageplanids\n" +
		"short,abc,true,\n" +
		"ok," + strings.Repeat("q", 25) + ",true,nope00\n" +
		"flag," + strings.Repeat("r", 25) + ",maybe,\n" +
		"wide," + strings.Repeat("s", 25) + ",true,,surplus\n" +
		"nokey,,true,\n" +
		"dup1," + strings.Repeat("t", 25) + ",true,\n" +
		"dup2," + strings.Repeat("t", 25) + ",true,\n"
	r = e.do("POST", "/apikeys?mode=import&format=csv&failonwarnings=false", bad)
	if r.code != 201 {
		t.Fatalf("import with warnings: %d %s", r.code, r.body)
	}
	got = r.json(t)
	var warnings []string
	for _, w := range got["warnings"].([]any) {
		warnings = append(warnings, w.(string))
	}
	wantWarnings := []string{
		"line 2: API Key value should be at least 20 characters",
		`line 4: Enabled is "maybe": want true or false`,
		"line 5: the row has 5 fields but the header has 4",
		"line 6: the Key is empty",
		"line 7: the same Key appears again on line 8, which is imported instead",
		"line 3: Invalid Usage Plan ID specified (usage plan nope00)",
	}
	if strings.Join(warnings, "\n") != strings.Join(wantWarnings, "\n") {
		t.Fatalf("warnings\n got %q\nwant %q", warnings, wantWarnings)
	}
	if n := len(got["ids"].([]any)); n != 2 {
		t.Fatalf("imported %d keys, want 2 (lines 3 and 8): %s", n, r.body)
	}
	if k := keyByValueForTest(e, strings.Repeat("t", 25)); k == nil || k.Name != "dup2" {
		t.Fatalf("the last line of a repeated key wins: %v", k)
	}

	// failonwarnings: a row this package refuses, and a warning the state
	// machine raises (an unknown plan): both refuse the whole import.
	before := len(e.store.Config().GetApiKeys())
	for _, c := range []struct {
		name string
		body string
		msg  string
	}{
		{"bad row", "name,key\nok," + strings.Repeat("u", 25) + "\nbad,short\n", "Import failed: line 3: API Key value should be at least 20 characters"},
		{"unknown plan", "name,key,usageplanids\nok," + strings.Repeat("v", 25) + ",nope00\n", "Import failed: line 2: Invalid Usage Plan ID specified (usage plan nope00)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/apikeys?mode=import&format=csv&failonwarnings=true", c.body), 400, "BadRequestException", c.msg)
			if n := len(e.store.Config().GetApiKeys()); n != before {
				t.Fatalf("a refused import changed the keys: %d, want %d", n, before)
			}
		})
	}

	for _, c := range []struct {
		name, query, body, msg string
	}{
		{"no format", "mode=import", "name,key\n", "The format parameter is required: format=csv"},
		{"json format", "mode=import&format=json", "name,key\n", `Invalid format "json"*`},
		{"bad mode", "mode=export&format=csv", "name,key\n", `Invalid mode "export"*`},
		{"bad flag", "mode=import&format=csv&failonwarnings=sure", "name,key\n", `Invalid failonwarnings "sure"*`},
		{"empty", "mode=import&format=csv", "", "Invalid API key file: the file is empty*"},
		{"no key column", "mode=import&format=csv", "name,value\na,b\n", "Invalid API key file: line 1: the header must name the columns Name and Key*"},
		{"column twice", "mode=import&format=csv", "name,key,Name\n", `Invalid API key file: line 1: the column "Name" appears twice in the header`},
		{"unparseable", "mode=import&format=csv", "name,key\n\"open," + val1 + "\n", "Invalid API key file: line 2: a quoted field is not closed"},
		{"binary", "mode=import&format=csv", "\xff\xfe\x00", "Invalid API key file: the file is not UTF-8 text"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/apikeys?"+c.query, c.body), 400, "BadRequestException", c.msg)
		})
	}
}

func keyByValueForTest(e *env, v string) *struct{ Name string } {
	for _, k := range e.store.Config().GetApiKeys() {
		if e.value(k) == v {
			return &struct{ Name string }{k.GetName()}
		}
	}
	return nil
}

func TestImportTooLargeForOneChange(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("name,key\n")
	// Short rows: a file within the body cap whose sealed keys encode to
	// more than one change may hold.
	for i := range 44000 {
		b.WriteString("n,")
		b.WriteString(strings.Repeat("k", 10))
		b.WriteString(strings.Repeat("0", 10-len(itoa(i))) + itoa(i))
		b.WriteString("\n")
	}
	if b.Len() > maxBodyBytes {
		t.Fatalf("test file too large: %d", b.Len())
	}
	wantError(t, e.do("POST", "/apikeys?mode=import&format=csv", b.String()), 400, "BadRequestException", "The change is too large*")
	if n := len(e.store.Config().GetApiKeys()); n != 0 {
		t.Fatalf("%d keys imported from a refused file", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
