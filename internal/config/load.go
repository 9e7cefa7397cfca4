package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// ErrInvalid is wrapped by every error Load and Validate return for a bad
// configuration (as opposed to an unreadable file), so callers can tell them
// apart with errors.Is.
var ErrInvalid = errors.New("invalid configuration")

// FieldError is one problem in a configuration file: where it is and what
// is wrong.
type FieldError struct {
	// File is the configuration file name ("" for flags-only configs).
	File string
	// Line and Column are 1-based; 0 when the position is unknown (for
	// example a value that came from a flag).
	Line, Column int
	// Field is the YAML path of the offending field, e.g. "sites[0].origins[1]".
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error formats "file:line:col: field: message".
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Errors is a list of FieldErrors; it is what Load and Validate return.
type Errors []*FieldError

// Error joins the messages, one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the individual errors (errors.Is/As see each).
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// nodePosError is returned by the NodeUnmarshalers; Load turns it into a
// FieldError with the file name.
type nodePosError struct {
	line, col int
	path      string
	msg       string
}

func (e *nodePosError) Error() string { return e.msg }

func nodeError(n ast.Node, format string, args ...any) error {
	e := &nodePosError{msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			e.line, e.col = tk.Position.Line, tk.Position.Column
		}
		e.path = n.GetPath()
	}
	return e
}

// Load reads, strictly decodes, defaults and validates the file at path.
// Errors: an *os.PathError when it cannot be read; Errors (each a
// *FieldError naming file, line and field) when it is invalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes data (named file in errors), applies defaults and validates.
func Parse(file string, data []byte) (*Config, error) {
	cfg, f, err := Decode(file, data)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := cfg.validate(file, f); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Decode decodes data strictly without applying defaults or validating; it
// also returns the parsed AST so that later validation errors can be
// positioned. Callers that merge flags use Decode, then ApplyDefaults, then
// ValidateAt.
func Decode(file string, data []byte) (cfg *Config, f *ast.File, err error) {
	// goccy/go-yaml can panic on some malformed documents (found by
	// FuzzParse, e.g. a tag on an empty sequence value); a bad file must
	// never crash the process or a reload, so turn that into an error.
	defer func() {
		if p := recover(); p != nil {
			cfg, f, err = nil, nil, Errors{{File: file, Msg: fmt.Sprintf("YAML decoder failed on this document: %v", p)}}
		}
	}()
	cfg = &Config{}
	f, err = parser.ParseBytes(data, 0)
	if err != nil {
		return nil, nil, Errors{yamlError(file, err)}
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return cfg, f, nil
	}
	if err := yaml.UnmarshalWithOptions(data, cfg, yaml.Strict()); err != nil {
		return nil, nil, Errors{yamlError(file, err)}
	}
	return cfg, f, nil
}

func yamlError(file string, err error) *FieldError {
	var pe *nodePosError
	if errors.As(err, &pe) {
		return &FieldError{File: file, Line: pe.line, Column: pe.col, Field: cleanPath(pe.path), Msg: pe.msg}
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		fe := &FieldError{File: file, Msg: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			fe.Line, fe.Column = tk.Position.Line, tk.Position.Column
		}
		var ue *yaml.UnknownFieldError
		if errors.As(err, &ue) {
			fe.Msg = "unknown field (check spelling; see `portcullis config reference`)"
			if tk := ue.GetToken(); tk != nil {
				fe.Field = tk.Value
			}
		}
		return fe
	}
	return &FieldError{File: file, Msg: err.Error()}
}

// cleanPath turns goccy's "$.sites[0].origins" into "sites[0].origins".
func cleanPath(p string) string {
	p = strings.TrimPrefix(p, "$")
	return strings.TrimPrefix(p, ".")
}

// position finds the line and column of a YAML path in f, 0 if absent.
func position(f *ast.File, field string) (int, int) {
	if f == nil || field == "" {
		return 0, 0
	}
	for p := field; p != ""; {
		path, err := yaml.PathString("$." + p)
		if err == nil {
			if n, err := path.FilterFile(f); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line, tk.Position.Column
				}
			}
		}
		// Fall back to the parent field.
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0, 0
}
