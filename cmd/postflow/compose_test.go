package main

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/postflow/postflow/internal/config"
)

// No Docker engine runs where the tests run, so this reads
// temporal-compose.yml the way Compose would (YAML merge keys, ${VAR:-x} and
// ${VAR:?msg} interpolation) and checks that the stack is whole and that
// the API and worker get a configuration PostFlow accepts.

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Ports []string `yaml:"ports"`
	} `yaml:"services"`
}

var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}`)

// interpolate substitutes ${VAR}, ${VAR:-default} and ${VAR:?error} from
// vars, as Compose does, and unescapes $$.
func interpolate(s string, vars map[string]string) (string, error) {
	var missing error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		v, ok := vars[p[1]]
		if ok && v != "" {
			return v
		}
		switch p[2] {
		case "-":
			return p[3]
		case "?":
			missing = fmt.Errorf("%s: %s", p[1], p[3])
		}
		return ""
	})
	return strings.ReplaceAll(out, "$$", "$"), missing
}

func loadCompose(t *testing.T, vars map[string]string) (composeFile, error) {
	t.Helper()
	raw, err := os.ReadFile("../../temporal-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := interpolate(string(raw), vars)
	if err != nil {
		return composeFile{}, err
	}
	var f composeFile
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		t.Fatalf("temporal-compose.yml is not valid YAML: %v", err)
	}
	return f, nil
}

func TestComposeStack(t *testing.T) {
	vars := map[string]string{
		"TOKEN_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"TEMPORAL_PAYLOAD_KEY": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"JWT_SECRET":           "0123456789abcdef0123456789abcdef-jwt",
		"MEDIA_URL_SECRET":     "0123456789abcdef0123456789abcdef-media",
	}
	f, err := loadCompose(t, vars)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"postgresql", "temporal", "temporal-ui", "mongodb", "redis", "postflow-api", "postflow-worker"} {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	for name, svc := range f.Services {
		for dep := range svc.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
	}
	if _, err := os.Stat("../../Dockerfile"); err != nil {
		t.Errorf("the postflow services build from the Dockerfile: %v", err)
	}

	known := knownEnvNames()
	for name, role := range map[string]config.Role{"postflow-api": config.RoleAPI, "postflow-worker": config.RoleWorker} {
		svc := f.Services[name]
		if svc.Build == nil {
			t.Errorf("%s must be built from the repository", name)
		}
		if len(svc.Command) != 1 || svc.Command[0] != string(role) {
			t.Errorf("%s command = %v, want [%s]", name, svc.Command, role)
		}
		var environ []string
		for k, v := range svc.Environment {
			if !known[k] {
				t.Errorf("%s sets %s, which PostFlow does not read", name, k)
			}
			environ = append(environ, k+"="+v)
		}
		cfg, err := config.Load(environ, role)
		if err != nil {
			t.Errorf("%s: its environment is refused: %v", name, err)
			continue
		}
		if !cfg.Production() {
			t.Errorf("%s must run with NODE_ENV=production", name)
		}
		// Every host PostFlow dials is a service of the file.
		hosts := map[string]string{"TEMPORAL_ADDRESS": "temporal", "MONGODB_URI": "mongodb"}
		if role == config.RoleAPI {
			hosts["REDIS_URL"] = "redis"
		}
		for envName, want := range hosts {
			v := svc.Environment[envName]
			host := v
			if u, err := url.Parse(v); err == nil && u.Host != "" {
				host = u.Host
			}
			host, _, _ = strings.Cut(host, ":")
			if host != want {
				t.Errorf("%s %s = %q, want host %s", name, envName, v, want)
			}
			if _, ok := svc.DependsOn[want]; !ok && want != "temporal" {
				t.Errorf("%s should wait for %s", name, want)
			}
		}
	}
	ui := f.Services["temporal-ui"].Environment
	if ui["TEMPORAL_ADDRESS"] != "temporal:7233" {
		t.Error("the Web UI must reach the Temporal frontend")
	}
	// The browser decodes payloads through the API, which allows the UI's
	// origin.
	if ui["TEMPORAL_CODEC_ENDPOINT"] != "http://localhost:8080/temporal-codec" ||
		f.Services["postflow-api"].Environment["TEMPORAL_UI_ORIGIN"] != "http://localhost:"+ui["TEMPORAL_UI_PORT"] {
		t.Errorf("codec endpoint %q, UI origin %q", ui["TEMPORAL_CODEC_ENDPOINT"], f.Services["postflow-api"].Environment["TEMPORAL_UI_ORIGIN"])
	}

	// Compose refuses to start without the secrets instead of running with
	// none.
	for _, secret := range []string{"TOKEN_ENCRYPTION_KEY", "TEMPORAL_PAYLOAD_KEY"} {
		without := maps.Clone(vars)
		delete(without, secret)
		if _, err := loadCompose(t, without); err == nil || !strings.Contains(err.Error(), secret) {
			t.Errorf("without %s: err = %v, want Compose to refuse", secret, err)
		}
	}
}

// knownEnvNames lists every variable config.Config reads.
func knownEnvNames() map[string]bool {
	names := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if n := f.Tag.Get("env"); n != "" {
				names[n] = true
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}))
	return names
}
