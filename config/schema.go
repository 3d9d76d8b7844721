package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// The schema is the Config type itself: key names come from mapstructure
// tags, so adding a field to a struct is all it takes to make its key
// known, overridable from the environment and covered by the example test.

// envPrefix starts every environment override.
const envPrefix = "HELPDESK_"

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	configType   = reflect.TypeFor[Config]()
)

// leaf is a scalar (or string list) key below some struct.
type leaf struct {
	path string // dotted mapstructure names, e.g. "imap.oauth2.client_id"
	typ  reflect.Type
}

// envName is the environment variable suffix of a dotted path.
func envName(path string) string {
	return strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// joinKey appends key k to a dotted prefix.
func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// keyOf returns the mapstructure key of a struct field.
func keyOf(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// structOf returns the struct type behind t (dereferencing a pointer), or nil.
func structOf(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return t
	}
	return nil
}

// listElem returns the element struct type when t is a list of structs.
func listElem(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Slice {
		return structOf(t.Elem())
	}
	return nil
}

// fieldByKey finds the field of struct type t with the given key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && keyOf(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// leaves lists the keys of struct type t that hold a value (not a struct,
// not a list of structs), in field order.
func leaves(t reflect.Type, prefix string) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		path := joinKey(prefix, keyOf(f))
		switch {
		case listElem(f.Type) != nil:
			// Lists of structs are handled by index, see applyEnv.
		case structOf(f.Type) != nil:
			out = append(out, leaves(structOf(f.Type), path)...)
		default:
			out = append(out, leaf{path: path, typ: f.Type})
		}
	}
	return out
}

// lists returns the top-level list-of-struct keys and their element types.
func lists() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range configType.NumField() {
		f := configType.Field(i)
		if elem := listElem(f.Type); elem != nil {
			out[keyOf(f)] = elem
		}
	}
	return out
}

// applyEnv applies HELPDESK_* overrides from environ to v and returns
// which key each variable set. Scalar keys map one to one
// (HELPDESK_SMTP_PASSWORD → smtp.password); entries of lists that the file
// defines can be reached by index (HELPDESK_MAILBOXES_0_IMAP_PASSWORD →
// mailboxes[0].imap.password). Variables that name no key are ignored, since
// HELPDESK_CONFIG and others share the prefix. Empty values are ignored,
// as viper does by default, so an empty variable cannot blank a setting.
func applyEnv(v *viper.Viper, environ []string) (map[string]string, error) {
	vals := map[string]string{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, envPrefix) {
			vals[name] = val // the last entry wins, as in the shell
		}
	}
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names)

	top := map[string]leaf{}
	for _, l := range leaves(configType, "") {
		top[envName(l.path)] = l
	}
	listTypes := lists()
	listKeys := make([]string, 0, len(listTypes))
	for k := range listTypes {
		listKeys = append(listKeys, k)
	}
	slices.Sort(listKeys)

	fromEnv := map[string]string{}
	for _, name := range names {
		val := vals[name]
		if val == "" {
			continue
		}
		suffix := strings.TrimPrefix(name, envPrefix)
		if l, ok := top[suffix]; ok {
			fromEnv[l.path] = name
			x, err := envValue(l, val)
			if err != nil {
				return fromEnv, err
			}
			v.Set(l.path, x)
			continue
		}
		for _, lk := range listKeys {
			if err := applyListEnv(v, lk, listTypes[lk], name, suffix, val, fromEnv); err != nil {
				return fromEnv, err
			}
		}
	}
	return fromEnv, nil
}

// applyListEnv applies one variable if it has the form <LIST>_<i>_<KEY>.
func applyListEnv(v *viper.Viper, listKey string, elem reflect.Type, name, suffix, val string, fromEnv map[string]string) error {
	rest, ok := strings.CutPrefix(suffix, envName(listKey)+"_")
	if !ok {
		return nil
	}
	idxStr, sub, ok := strings.Cut(rest, "_")
	if !ok {
		return nil
	}
	if idxStr == "" || strings.Trim(idxStr, "0123456789") != "" {
		return nil
	}
	idx, err := strconv.Atoi(idxStr)
	if err != nil {
		return nil // absurdly long: no such entry anyway
	}
	var l leaf
	found := false
	for _, cand := range leaves(elem, "") {
		if envName(cand.path) == sub {
			l, found = cand, true
			break
		}
	}
	if !found {
		return nil
	}
	key := fmt.Sprintf("%s[%d].%s", listKey, idx, l.path)
	fromEnv[key] = name
	list, _ := v.Get(listKey).([]any)
	if idx >= len(list) {
		return errorf(fmt.Sprintf("%s[%d]", listKey, idx),
			"%s is set but the config file has no such entry (list entries cannot be added from the environment)", name)
	}
	x, err := envValue(leaf{path: key, typ: l.typ}, val)
	if err != nil {
		return err
	}
	// Copy what we change: the list and maps belong to viper.
	newList := slices.Clone(list)
	entry, _ := newList[idx].(map[string]any)
	newList[idx] = setPath(entry, strings.Split(l.path, "."), x)
	v.Set(listKey, newList)
	return nil
}

// setPath returns a copy of m with path set to val, copying each map on the
// way and replacing anything that is not a map.
func setPath(m map[string]any, path []string, val any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	if len(path) == 1 {
		out[path[0]] = val
		return out
	}
	child, _ := out[path[0]].(map[string]any)
	out[path[0]] = setPath(child, path[1:], val)
	return out
}

// envValue converts an environment string to what the YAML would hold for
// the key's type; durations and sizes stay strings for the decode hook.
func envValue(l leaf, val string) (any, error) {
	switch {
	case l.typ == durationType || l.typ == byteSizeType:
		return val, nil
	case l.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return nil, errorf(l.path, "must be true or false (got %q)", val)
		}
		return b, nil
	case l.typ.Kind() == reflect.Int:
		n, err := strconv.Atoi(val)
		if err != nil {
			return nil, errorf(l.path, "must be an integer (got %q)", val)
		}
		return n, nil
	case l.typ.Kind() == reflect.Slice:
		// A list from one variable: comma-separated.
		var items []any
		for item := range strings.SplitSeq(val, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	default:
		return val, nil
	}
}

// checkKeys reports the first key, in sorted order, that Config does not
// have. viper's AllKeys includes keys with null values (which AllSettings
// and so mapstructure's ErrorUnused would never see: "pasword:" with the
// value forgotten); AllSettings reaches into list entries.
func checkKeys(v *viper.Viper) error {
	keys := v.AllKeys()
	slices.Sort(keys)
	for _, k := range keys {
		if err := checkPath(configType, strings.Split(k, ".")); err != nil {
			return err
		}
	}
	return checkMap(configType, v.AllSettings(), "")
}

// checkPath checks a dotted key path against struct type t.
func checkPath(t reflect.Type, path []string) error {
	for i, seg := range path {
		st := structOf(t)
		if st == nil {
			// A value where a mapping was expected: decoding reports it
			// with the expected type.
			return nil
		}
		f, ok := fieldByKey(st, seg)
		if !ok {
			return errorf(strings.Join(path[:i+1], "."), "unknown key")
		}
		t = f.Type
	}
	return nil
}

// checkMap checks the keys of data against struct type t, recursively.
func checkMap(t reflect.Type, data any, prefix string) error {
	st := structOf(t)
	m, ok := data.(map[string]any)
	if st == nil || !ok {
		return nil // type mismatches are reported by decoding
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := joinKey(prefix, k)
		f, ok := fieldByKey(st, k)
		if !ok {
			return errorf(key, "unknown key")
		}
		if elem := listElem(f.Type); elem != nil {
			list, _ := m[k].([]any)
			for i, item := range list {
				if err := checkMap(elem, item, fmt.Sprintf("%s[%d]", key, i)); err != nil {
					return err
				}
			}
			continue
		}
		if err := checkMap(f.Type, m[k], key); err != nil {
			return err
		}
	}
	return nil
}
