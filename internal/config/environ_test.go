package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

// Every setting survives Environ then a parse: the test sets each field
// of Config to a value that is not its default (found by reflection, so a
// field added later is covered without touching this test).
func TestEnvironRoundTrip(t *testing.T) {
	var want Config
	n := fill(t, reflect.ValueOf(&want).Elem())
	if n < 50 {
		t.Fatalf("filled %d settings; Config has more", n)
	}
	var got Config
	if err := env.ParseWithOptions(&got, env.Options{Environment: env.ToMap(Environ(&want))}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

// fill sets every env-tagged field under v to a non-default value of its
// type and counts them.
func fill(t *testing.T, v reflect.Value) int {
	n := 0
	for i := 0; i < v.NumField(); i++ {
		f, fv := v.Type().Field(i), v.Field(i)
		if f.Tag.Get("env") == "" {
			if f.Type.Kind() == reflect.Struct {
				n += fill(t, fv)
			}
			continue
		}
		n++
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			fv.SetInt(int64(97 * time.Second))
		case f.Type.Kind() == reflect.String:
			fv.SetString("value-of-" + f.Name + ", with a comma")
		case f.Type.Kind() == reflect.Bool:
			fv.SetBool(f.Tag.Get("envDefault") != "true")
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			fv.SetInt(4242)
		case f.Type == reflect.TypeOf([]string(nil)):
			fv.Set(reflect.ValueOf([]string{"first", "second"}))
		case f.Type == reflect.TypeOf((*bool)(nil)):
			no := false
			fv.Set(reflect.ValueOf(&no))
		default:
			t.Fatalf("%s: a field of type %s; teach Environ and this test", f.Name, f.Type)
		}
	}
	return n
}

// Every variable Config reads is documented in docs/configuration.md's
// table, and the table names none it does not read.
func TestEveryVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	// A row's first cell names one variable or several: `A`, `B`.
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")
	for _, row := range regexp.MustCompile("(?m)^\\|([^|]*)\\|").FindAllStringSubmatch(string(doc), -1) {
		for _, m := range name.FindAllStringSubmatch(row[1], -1) {
			documented[m[1]] = true
		}
	}
	read := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name := f.Tag.Get("env"); name != "" {
				read[name] = true
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	for name := range read {
		if !documented[name] {
			t.Errorf("%s is read but not in docs/configuration.md", name)
		}
	}
	for name := range documented {
		if !read[name] {
			t.Errorf("docs/configuration.md documents %s, which nothing reads", name)
		}
	}
}
