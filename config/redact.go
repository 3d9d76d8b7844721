package config

import (
	"encoding/json"
	"log/slog"
	"reflect"
	"time"
)

// redacted replaces a non-empty secret.
const redacted = "***"

// Redacted returns the effective configuration as nested maps keyed like
// the YAML, for logging: fields tagged `secret:"true"` (passwords, client
// secrets, refresh tokens) read "***" when set, durations and sizes are
// strings ("30s", "25MiB"). Paths of *_file secrets are kept: they are not
// secret and tell the operator where a secret came from.
func (c *Config) Redacted() map[string]any {
	m, _ := redact(reflect.ValueOf(*c)).(map[string]any)
	return m
}

// LogValue makes slog print the redacted config, so passing a *Config to a
// logger can never leak a secret.
func (c *Config) LogValue() slog.Value {
	return slog.AnyValue(c.Redacted())
}

// String is the redacted config as one line of JSON.
func (c *Config) String() string {
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		// Only maps, slices, strings, numbers and bools are in there.
		return "config: " + err.Error()
	}
	return string(b)
}

func redact(v reflect.Value) any {
	switch v.Type() {
	case durationType:
		return time.Duration(v.Int()).String()
	case byteSizeType:
		return ByteSize(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return redact(v.Elem())
	case reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if f.Tag.Get("secret") == "true" {
				if fv.String() != "" {
					m[keyOf(f)] = redacted
				} else {
					m[keyOf(f)] = ""
				}
				continue
			}
			m[keyOf(f)] = redact(fv)
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redact(v.Index(i))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	default:
		return v.Interface()
	}
}
