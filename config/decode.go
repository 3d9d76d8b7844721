package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes. In YAML it is a plain integer or a number
// with a unit: B; KB, MB, GB (powers of 1000); KiB, MiB, GiB and the
// shorthands K, M, G (powers of 1024, like nginx's "25m"). Units are
// case-insensitive; a space between number and unit is allowed.
type ByteSize int64

// Binary size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"k": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gib": 1 << 30,
}

// ParseByteSize parses "25MiB", "25 MB", "26214400" and the like.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	f *= mult
	if f >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(f), nil
}

// String formats the size with the largest binary unit that divides it,
// so it parses back to the same value.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%GiB == 0:
		return strconv.FormatInt(int64(b/GiB), 10) + "GiB"
	case b != 0 && b%MiB == 0:
		return strconv.FormatInt(int64(b/MiB), 10) + "MiB"
	case b != 0 && b%KiB == 0:
		return strconv.FormatInt(int64(b/KiB), 10) + "KiB"
	default:
		return strconv.FormatInt(int64(b), 10) + "B"
	}
}

// decodeHook runs before mapstructure stores each value. It parses
// durations and sizes, and checks every other value's YAML type against the
// field so the error says what was expected in words, not Go types.
func decodeHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	t := to.Type()
	switch t {
	case durationType:
		return toDuration(data)
	case byteSizeType:
		return toByteSize(data)
	}
	fk := from.Kind()
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if fk != reflect.Map {
			return nil, fmt.Errorf("must be a mapping of keys to values (got %s)", describe(data))
		}
	case reflect.Slice:
		if fk != reflect.Slice && fk != reflect.Array {
			return nil, fmt.Errorf("must be a list (got %s)", describe(data))
		}
	case reflect.String:
		if isNumberOrBool(fk) {
			// YAML reads unquoted 0123 as 83 and 1e3 as 1000; converting
			// back could silently change a password, so ask for quotes.
			what := "the number"
			if fk == reflect.Bool {
				what = "the boolean"
			}
			return nil, fmt.Errorf("must be a string, but YAML read it as %s %v; put the value in quotes", what, data)
		}
		if fk != reflect.String {
			return nil, fmt.Errorf("must be a string (got %s)", describe(data))
		}
	case reflect.Bool:
		if fk != reflect.Bool {
			return nil, fmt.Errorf("must be true or false (got %s)", describe(data))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return toInt(data)
	}
	return data, nil
}

func isNumberOrBool(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// toInt accepts integers, and floats only when whole (YAML 1e3).
func toInt(data any) (any, error) {
	v := reflect.ValueOf(data)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return nil, fmt.Errorf("must be an integer (got %s, too large)", describe(data))
		}
		return int64(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if f == math.Trunc(f) && math.Abs(f) < math.MaxInt64 {
			return int64(f), nil
		}
	}
	return nil, fmt.Errorf("must be an integer (got %s)", describe(data))
}

func toDuration(data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("must be a duration with a unit, like 30s, 5m or 1h (got %s)", describe(data))
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("must be a duration like 30s, 5m or 1h (got %q)", s)
	}
	return d, nil
}

func toByteSize(data any) (any, error) {
	if s, ok := data.(string); ok {
		b, err := ParseByteSize(s)
		if err != nil {
			return nil, fmt.Errorf("must be a size like 25MiB, 25MB or 26214400 (got %q)", s)
		}
		return b, nil
	}
	n, err := toInt(data)
	if err != nil {
		return nil, fmt.Errorf("must be a size like 25MiB, 25MB or 26214400 (got %s)", describe(data))
	}
	return ByteSize(n.(int64)), nil
}

// describe renders a YAML value for an error message.
func describe(data any) string {
	if data == nil {
		return "null"
	}
	switch reflect.ValueOf(data).Kind() {
	case reflect.String:
		return strconv.Quote(reflect.ValueOf(data).String())
	case reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return fmt.Sprint(data)
	}
}
