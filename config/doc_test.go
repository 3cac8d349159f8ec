package config

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestConfigReference: docs/config.md is the reference of every key, made
// from the config structs' yaml tags and doc comments (which state unit,
// default and bounds), so it cannot drift from the code. Rewrite it with
// go test ./config -run TestConfigReference -update.
func TestConfigReference(t *testing.T) {
	got := configReference(t)
	const path = "../docs/config.md"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with go test ./config -run TestConfigReference -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/config.md is out of date with the config structs: go test ./config -run TestConfigReference -update")
	}
	// Every key the reference lists is a real key, and every field has a comment.
	for _, k := range walkKeys(reflect.TypeOf(Config{}), "") {
		if !bytes.Contains(want, []byte("`"+k.path+"`")) {
			t.Errorf("docs/config.md lacks %s", k.path)
		}
	}
}

type keyDoc struct {
	path, typ string
	field     reflect.StructField
	owner     reflect.Type
}

// walkKeys lists every yaml key under t, depth first.
func walkKeys(t reflect.Type, prefix string) []keyDoc {
	var out []keyDoc
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out = append(out, keyDoc{path: path, typ: typeName(f.Type), field: f, owner: t})
		switch {
		case ft.Kind() == reflect.Struct && !leafTypes[ft.Name()]:
			out = append(out, walkKeys(ft, path)...)
		case ft.Kind() == reflect.Map && structElem(ft.Elem()) != nil:
			out = append(out, walkKeys(structElem(ft.Elem()), path+".<name>")...)
		case ft.Kind() == reflect.Slice && structElem(ft.Elem()) != nil:
			out = append(out, walkKeys(structElem(ft.Elem()), path+"[]")...)
		}
	}
	return out
}

// leafTypes are structs written as one scalar or handled as a whole.
var leafTypes = map[string]bool{"Actions": true, "Timestamp": true}

func structElem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && !leafTypes[t.Name()] {
		return t
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	}
	switch t.Name() {
	case "Duration":
		return "duration"
	case "ByteSize":
		return "size"
	case "Rate":
		return "rate"
	case "Secret":
		return "secret (${VAR})"
	case "URL":
		return "URL"
	case "Addr":
		return "host:port"
	case "Actions":
		return `"all" or list of string`
	case "Format":
		return "format"
	case "Timestamp":
		return "RFC 3339 time"
	}
	if t.Kind() == reflect.Struct {
		return "section"
	}
	return t.Kind().String()
}

// fieldDocs reads the doc comments of every struct field in the package.
func fieldDocs(t *testing.T) map[string]map[string]string {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				m := map[string]string{}
				var pending []string // a comment shared by consecutive fields without their own
				for _, fl := range st.Fields.List {
					text := strings.TrimSpace(fl.Doc.Text())
					if text == "" && len(pending) > 0 {
						text = pending[len(pending)-1]
					}
					for _, name := range fl.Names {
						m[name.Name] = text
					}
					if text != "" {
						pending = append(pending, text)
					}
				}
				out[ts.Name.Name] = m
				return true
			})
		}
	}
	return out
}

func configReference(t *testing.T) []byte {
	docs := fieldDocs(t)
	var b bytes.Buffer
	b.WriteString("# config.yaml reference\n\n")
	b.WriteString("Every key cutover reads, with its type and its meaning, unit, default and\n")
	b.WriteString("bounds. This page is made from the config package's own field comments\n")
	b.WriteString("(`go test ./config -run TestConfigReference -update`), so it is the code's.\n\n")
	b.WriteString("Types: a *duration* is a Go duration (`250ms`, `5s`, `2m`); a *size* is\n")
	b.WriteString("`8MiB`, `64MB`, `512KiB` or a number of bytes; a *rate* is a fraction\n")
	b.WriteString("(`0.05`) or a percentage (`5%`); a *secret* is a `${VAR}` reference to an\n")
	b.WriteString("environment variable (never the value itself). `<name>` stands for a map\n")
	b.WriteString("key you choose, `[]` for a list item. Errors name the file and line\n")
	b.WriteString("(`cutover config check`).\n")
	keys := walkKeys(reflect.TypeOf(Config{}), "")
	section := ""
	for _, k := range keys {
		top := strings.Split(strings.Split(k.path, ".")[0], "[")[0]
		if top == k.path && structElem(k.field.Type) == nil && k.field.Type.Kind() != reflect.Map {
			top = "top level"
		}
		if top != section {
			section = top
			title := "`" + section + "`"
			if section == "top level" {
				title = "Top level"
			}
			fmt.Fprintf(&b, "\n## %s\n\n| key | type | meaning |\n|---|---|---|\n", title)
		}
		text := docs[k.owner.Name()][k.field.Name]
		if text == "" {
			t.Errorf("%s (%s.%s) has no doc comment", k.path, k.owner.Name(), k.field.Name)
		}
		text = strings.Join(strings.Fields(text), " ")
		text = strings.ReplaceAll(text, "|", `\|`)
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k.path, k.typ, text)
	}
	return b.Bytes()
}
