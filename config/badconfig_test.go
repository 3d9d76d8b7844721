package config

import (
	"bufio"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/badconfig/*/expected-error from the current output")

// TestBadConfigs loads testdata/badconfig/NAME/config.yaml (with the
// variables in NAME/env, if any, as the whole environment) and compares
// the one-line error with NAME/expected-error.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("testdata/badconfig/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 20 {
		t.Fatalf("found %d bad configs, want at least 20", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			env := readEnvFile(t, filepath.Join(dir, "env"))
			// A relative path keeps paths in messages the same on every machine.
			cfg, err := LoadWithEnv(filepath.Join(dir, "config.yaml"), env)
			if err == nil {
				t.Fatalf("loaded without error: %s", cfg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error: %v", err, err)
			}
			got := err.Error()
			if strings.ContainsAny(got, "\r\n") {
				t.Errorf("error is not one line: %q", got)
			}
			wantFile := filepath.Join(dir, "expected-error")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != strings.TrimSpace(string(want)) {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, strings.TrimSpace(string(want)))
			}
		})
	}
}

// readEnvFile reads NAME=value lines; a missing file is an empty environment.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}
