// Package nils tells a nil interface value from a non-nil one, looking
// through the interface: an option given a nil *T where it wants an
// interface must report a bad value, not panic later.
package nils

import "reflect"

// Is says whether v is nil, or holds a nil pointer, map, slice, channel,
// function or interface.
func Is(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
