package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Reference renders the configuration reference as a Markdown table, from
// the struct tags (`yaml`, `doc`, `default`) of Config. The README embeds
// it; a test in the cmd package keeps the two in step.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | type | default | meaning |\n|---|---|---|---|\n")
	refWalk(&b, reflect.TypeOf(Config{}), "")
	return b.String()
}

func refWalk(b *strings.Builder, t reflect.Type, prefix string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", key, typeName(ft), f.Tag.Get("default"), f.Tag.Get("doc"))
		switch {
		case ft.Kind() == reflect.Struct && !isLeaf(ft):
			refWalk(b, ft, key+".")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isLeaf(ft.Elem()):
			refWalk(b, ft.Elem(), key+"[].")
		}
	}
}

func isLeaf(t reflect.Type) bool {
	return t == reflect.TypeOf(RateSpec{}) || t == reflect.TypeOf(Prefix{})
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(Duration(0)):
		return "duration"
	case reflect.TypeOf(ByteSize(0)):
		return "size"
	case reflect.TypeOf(Prefix{}):
		return "CIDR"
	case reflect.TypeOf(RateSpec{}):
		return "rate"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Struct:
		return "map"
	case reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Duration:
		return time.Duration(x).String()
	case ByteSize:
		return formatSize(int64(x))
	case *bool:
		if x == nil {
			return ""
		}
		return fmt.Sprint(*x)
	}
	return fmt.Sprint(v.Interface())
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprint(n)
}
