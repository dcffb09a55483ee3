package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Environ is c as an environment (KEY=value pairs) that Load reads back
// into the same settings: every variable that is set or has a default,
// in the struct's order; lists joined by commas (env's default
// separator). It holds secrets: give it to a child process only, never to
// a log. Deriving it from the struct's env tags keeps a process started
// with c's settings (dev's separate worker) from missing one added later.
func Environ(c *Config) []string {
	var out []string
	environ(reflect.ValueOf(c).Elem(), &out)
	return out
}

func environ(v reflect.Value, out *[]string) {
	for i := 0; i < v.NumField(); i++ {
		f, fv := v.Type().Field(i), v.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			if f.Type.Kind() == reflect.Struct {
				environ(fv, out)
			}
			continue
		}
		// A zero value is left out, unless the variable has a default:
		// then its absence would read as the default (false where
		// BLUESKY_ENABLED defaults to true).
		if fv.IsZero() && f.Tag.Get("envDefault") == "" {
			continue
		}
		if fv.Kind() == reflect.Pointer {
			fv = fv.Elem()
		}
		var s string
		switch x := fv.Interface().(type) {
		case time.Duration:
			s = x.String()
		case []string:
			s = strings.Join(x, ",")
		default:
			s = fmt.Sprint(x)
		}
		*out = append(*out, name+"="+s)
	}
}
