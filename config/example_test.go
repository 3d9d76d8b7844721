package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

const examplePath = "../config.example.yaml"

// loadExample loads config.example.yaml with its /etc/helpdesk/ secret
// files created in a temporary directory.
func loadExample(t *testing.T) *Config {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(data), "/etc/helpdesk/", dir+"/")
	files := regexp.MustCompile(`(?m)^\s*[a-z_]+_file:\s*(\S+)\s*$`).FindAllStringSubmatch(text, -1)
	if len(files) < 3 {
		t.Fatalf("the example sets %d *_file keys; expected the SMTP, IMAP and OAuth2 ones", len(files))
	}
	for _, m := range files {
		if !strings.HasPrefix(m[1], dir) {
			t.Fatalf("example secret file %s is not under /etc/helpdesk/", m[1])
		}
		if err := os.WriteFile(m[1], []byte("example-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadWithEnv(path, nil)
	if err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}
	return c
}

func TestExampleLoads(t *testing.T) {
	t.Parallel()
	c := loadExample(t)
	if c.SMTP.Password != "example-secret" {
		t.Errorf("smtp password from file: got %q", c.SMTP.Password)
	}
	if len(c.Mailboxes) != 2 || c.Mailboxes[1].IMAP.OAuth2 == nil {
		t.Fatalf("want two mailboxes, the second with oauth2: %s", c)
	}
	if c.Mailboxes[1].IMAP.OAuth2.RefreshToken != "example-secret" {
		t.Errorf("refresh token from file: got %q", c.Mailboxes[1].IMAP.OAuth2.RefreshToken)
	}
}

// commentedKey matches a commented-out key ("  # password: change-me").
// Prose comments in the example start with a capital letter or are not of
// the form "word: ...", so they never match.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ([a-z][a-z0-9_]*:(?:\s.*)?)$`)

// TestExampleCoversEveryKey: each key of Config appears in the example,
// active or commented out (for alternatives such as password and
// password_file), and the example has no key Config lacks.
func TestExampleCoversEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	uncommented := commentedKey.ReplaceAll(data, []byte("$1$2"))
	if n := len(commentedKey.FindAll(data, -1)); n < 4 {
		t.Errorf("found %d commented-out keys, want the inline alternatives of every *_file", n)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(uncommented)); err != nil {
		t.Fatalf("example with alternatives uncommented: %v", err)
	}
	have := map[string]bool{}
	yamlPaths(v.AllSettings(), "", have)
	want := map[string]bool{}
	schemaPaths(configType, "", want)

	for p := range want {
		if !have[p] {
			t.Errorf("config.example.yaml lacks %s", p)
		}
	}
	for p := range have {
		if !want[p] {
			t.Errorf("config.example.yaml has %s, which Config does not know", p)
		}
	}
	if len(want) < 50 {
		t.Errorf("schema has only %d keys; the walk is broken", len(want))
	}
}

// schemaPaths collects the leaf key paths of t; list entries are "[]".
func schemaPaths(t reflect.Type, prefix string, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		path := joinKey(prefix, keyOf(f))
		switch {
		case listElem(f.Type) != nil:
			schemaPaths(listElem(f.Type), path+"[]", out)
		case structOf(f.Type) != nil:
			schemaPaths(structOf(f.Type), path, out)
		default:
			out[path] = true
		}
	}
}

// yamlPaths collects the leaf key paths of parsed YAML; list entries that
// are mappings are "[]", lists of scalars are leaves.
func yamlPaths(data any, prefix string, out map[string]bool) {
	switch x := data.(type) {
	case map[string]any:
		for k, v := range x {
			yamlPaths(v, joinKey(prefix, k), out)
		}
	case []any:
		if len(x) > 0 && slices.ContainsFunc(x, func(e any) bool { _, ok := e.(map[string]any); return ok }) {
			for _, e := range x {
				yamlPaths(e, prefix+"[]", out)
			}
			return
		}
		out[prefix] = true
	default:
		out[prefix] = true
	}
}

// TestExampleShowsDefaults: where the example does not deliberately show
// something else, its values are the defaults, so the file doubles as the
// reference of defaults. Compared with the minimal config, which has the
// same domain and first mailbox address.
func TestExampleShowsDefaults(t *testing.T) {
	t.Parallel()
	ex := loadExample(t).Redacted()
	minimal, err := LoadWithEnv("testdata/good/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	def := minimal.Redacted()
	deliberate := map[string]bool{
		"smtp.host": true, "smtp.username": true, "smtp.password": true, "smtp.password_file": true,
		"mailboxes[0].comment_address": true, "mailboxes[0].imap.password": true,
		"mailboxes[0].imap.password_file": true,
	}
	flatEx, flatDef := map[string]any{}, map[string]any{}
	flatten(ex, "", flatEx)
	flatten(def, "", flatDef)
	for k, dv := range flatDef {
		if deliberate[k] || strings.HasPrefix(k, "mailboxes[1]") || strings.HasPrefix(k, "agents") || strings.HasPrefix(k, "teams") {
			continue
		}
		if ev := flatEx[k]; ev != dv {
			t.Errorf("example shows %s: %v, but the default is %v", k, ev, dv)
		}
	}
}

// flatten turns Redacted output into path → value, lists by index.
func flatten(data any, prefix string, out map[string]any) {
	switch x := data.(type) {
	case map[string]any:
		for k, v := range x {
			flatten(v, joinKey(prefix, k), out)
		}
	case []any:
		for i, e := range x {
			flatten(e, prefix+"["+strconv.Itoa(i)+"]", out)
		}
	default:
		out[prefix] = x
	}
}
