package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

type node = yaml.Node

// decodeStrict decodes one YAML document over out (whose current values are
// the defaults) and returns the document's root node for later error
// locating. Unlike yaml.v3's own KnownFields mode it reports every problem
// with the line and the full dotted key, and it treats a malformed duration
// or severity as a config error rather than aborting without a line.
// Errors are *configError values (joined) that the caller prefixes with the
// file name.
func decodeStrict(data []byte, out any) (*node, error) {
	var doc node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file keeps every default
		}
		return nil, yamlSyntaxError(err)
	}
	var extra node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &configError{line: extra.Line, err: errors.New("the file holds more than one YAML document; put everything in one")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return root, nil
	}
	var errs []error
	decodeValue(root, reflect.ValueOf(out).Elem(), nil, &errs)
	return root, errors.Join(errs...)
}

// yamlSyntaxError turns yaml.v3's "yaml: line 3: ..." into a configError.
func yamlSyntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &configError{line: line, err: errors.New("invalid YAML: " + tail)}
			}
		}
	}
	return &configError{err: errors.New("invalid YAML: " + msg)}
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	yamlUnmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// configError is one problem at one place in the file. line is 0 when the
// problem has no line (a default that fails validation).
type configError struct {
	line int
	key  string
	err  error
}

func (e *configError) Error() string {
	var b strings.Builder
	if e.line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.line)
	}
	if e.key != "" {
		fmt.Fprintf(&b, "key %s: ", e.key)
	}
	b.WriteString(e.err.Error())
	return b.String()
}

// inFile prefixes every joined error with the file name, one per line, in
// the "file:line" shape editors can jump to.
func inFile(name string, err error) error {
	if err == nil {
		return nil
	}
	list := flatten(err)
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ce *configError
		if errors.As(e, &ce) && ce.line > 0 {
			bare := *ce
			bare.line = 0
			out = append(out, fmt.Errorf("%s:%d: %w", name, ce.line, &bare))
		} else {
			out = append(out, fmt.Errorf("%s: %w", name, e))
		}
	}
	return errors.Join(out...)
}

func (e *configError) Unwrap() error { return e.err }

// flatten lists the leaves of nested errors.Join results.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func dotted(path []string) string { return strings.Join(path, ".") }

// decodeValue decodes n into v, recursing through structs, maps and slices so
// that every leaf error knows its key path.
func decodeValue(n *node, v reflect.Value, path []string, errs *[]error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	fail := func(line int, format string, args ...any) {
		*errs = append(*errs, &configError{line: line, key: dotted(path), err: fmt.Errorf(format, args...)})
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	t := v.Type()
	if isLeaf(t) {
		decodeLeaf(n, v, fail)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		decodeValue(n, v.Elem(), path, errs)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail(n.Line, "want a mapping of keys, got %s", describe(n))
			return
		}
		decodeStruct(n, v, path, errs)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail(n.Line, "want a mapping, got %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			sub := append(append([]string{}, path...), kn.Value)
			if seen[kn.Value] {
				*errs = append(*errs, &configError{line: kn.Line, key: dotted(sub), err: errors.New("key appears twice")})
				continue
			}
			seen[kn.Value] = true
			key := reflect.New(t.Key()).Elem()
			before := len(*errs)
			decodeValue(kn, key, sub, errs)
			elem := reflect.New(t.Elem()).Elem()
			if old := v.MapIndex(key); old.IsValid() {
				elem.Set(old)
			}
			decodeValue(vn, elem, sub, errs)
			if len(*errs) == before {
				v.SetMapIndex(key, elem)
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail(n.Line, "want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeValue(item, out.Index(i), append(append([]string{}, path...), strconv.Itoa(i)), errs)
		}
		v.Set(out)
	default:
		decodeLeaf(n, v, fail)
	}
}

// isLeaf reports whether t decodes as one value rather than field by field.
func isLeaf(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	pt := reflect.PointerTo(t)
	if t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType) ||
		t.Implements(yamlUnmarshalerType) || pt.Implements(yamlUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Pointer:
		return false
	}
	return true
}

func decodeLeaf(n *node, v reflect.Value, fail func(int, string, ...any)) {
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			fail(n.Line, "want a duration such as 30s, 5m or 1h, got %s", describe(n))
			return
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			fail(n.Line, "invalid duration %q: want a number with a unit, such as 30s, 5m or 1h", n.Value)
			return
		}
		v.SetInt(int64(d))
		return
	}
	target := reflect.New(v.Type())
	if err := n.Decode(target.Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			fail(n.Line, "want %s, got %s", typeName(v.Type()), describe(n))
			return
		}
		fail(n.Line, "%v", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	v.Set(target.Elem())
}

func decodeStruct(n *node, v reflect.Value, path []string, errs *[]error) {
	fields := map[string]reflect.Value{}
	var names []string
	collectFields(v, fields, &names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		sub := append(append([]string{}, path...), kn.Value)
		f, ok := fields[kn.Value]
		moved, wasMoved := movedKeys[dotted(sub)]
		switch {
		case !ok && wasMoved:
			*errs = append(*errs, &configError{line: kn.Line, key: dotted(sub), err: errors.New(moved)})
		case !ok:
			*errs = append(*errs, &configError{line: kn.Line, key: dotted(sub),
				err: fmt.Errorf("unknown key; known keys here: %s", strings.Join(names, ", "))})
		case seen[kn.Value]:
			*errs = append(*errs, &configError{line: kn.Line, key: dotted(sub), err: errors.New("key appears twice")})
		default:
			seen[kn.Value] = true
			decodeValue(vn, f, sub, errs)
		}
	}
}

// collectFields maps YAML keys to settable fields, following yaml.v3's tag
// rules (name, "-", ",inline"; an untagged field is its lower-cased name).
func collectFields(v reflect.Value, out map[string]reflect.Value, names *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			if sf.Type.Kind() == reflect.Struct {
				collectFields(v.Field(i), out, names)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = v.Field(i)
		*names = append(*names, name)
	}
}

func describe(n *node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported value"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// find returns the value node at path (map keys, or list indexes), or nil.
func find(root *node, path ...string) (key, value *node) {
	cur := root
	for _, p := range path {
		if cur == nil {
			return nil, nil
		}
		if cur.Kind == yaml.AliasNode && cur.Alias != nil {
			cur = cur.Alias
		}
		switch cur.Kind {
		case yaml.MappingNode:
			var next *node
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == p {
					key, next = cur.Content[i], cur.Content[i+1]
				}
			}
			cur = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(cur.Content) {
				return nil, nil
			}
			key, cur = cur.Content[i], cur.Content[i]
		default:
			return nil, nil
		}
	}
	return key, cur
}

// locate attaches the line of the key at path to err (no line when the file
// does not set that key, e.g. a default that fails validation).
func locate(root *node, err error, path ...string) error {
	if k, _ := find(root, path...); k != nil {
		return &configError{line: k.Line, key: dotted(path), err: err}
	}
	return &configError{key: dotted(path), err: err}
}
