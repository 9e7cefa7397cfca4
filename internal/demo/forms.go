package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// formError answers a body that could not be read or parsed: 413 when a
// MaxBytesReader limit was hit, 415 for an unsupported Content-Type, else 400.
func (s *Site) formError(w http.ResponseWriter, r *http.Request, err error) {
	tooBig, isTooBig := errors.AsType[*http.MaxBytesError](err)
	switch {
	case isTooBig:
		s.errorPage(w, r, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("The form you sent is larger than %d bytes.", tooBig.Limit))
	case errors.Is(err, errMediaType):
		s.errorPage(w, r, http.StatusUnsupportedMediaType, "Forms must be sent as URL-encoded or multipart form data.")
	default:
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
	}
}

var errMediaType = errors.New("demo: unsupported form media type")

// readForm reads r's whole body, at most limit bytes, and parses it as an
// application/x-www-form-urlencoded or multipart/form-data form. It returns
// the raw body (for hashing) and the fields. Oversized bodies fail with an
// *http.MaxBytesError, before any byte is read when Content-Length declares
// them.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, url.Values, error) {
	if r.ContentLength > limit {
		return nil, nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, nil, fmt.Errorf("demo: read form: %w", err)
	}
	body := buf.Bytes()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return body, nil, fmt.Errorf("%w: %w", errMediaType, err)
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return body, nil, fmt.Errorf("demo: parse form: %w", err)
		}
		return body, v, nil
	case "multipart/form-data":
		f, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(limit)
		if err != nil {
			return body, nil, fmt.Errorf("demo: parse multipart form: %w", err)
		}
		defer func() { _ = f.RemoveAll() }()
		return body, url.Values(f.Value), nil
	default:
		return body, nil, fmt.Errorf("%w: %q", errMediaType, mt)
	}
}

// postedForm reads and parses a form body of at most limit bytes (readForm)
// and sets BodySHA256Header to the hex SHA-256 of the bytes received. On
// failure it has already answered (formError) and ok is false.
func (s *Site) postedForm(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, sum string, v url.Values, ok bool) {
	body, v, err := readForm(w, r, limit)
	if body != nil {
		d := sha256.Sum256(body)
		sum = hex.EncodeToString(d[:])
		w.Header().Set(BodySHA256Header, sum)
	}
	if err != nil {
		s.formError(w, r, err)
		return nil, "", nil, false
	}
	return body, sum, v, true
}

// donationForm is both the form's state and its validation errors.
type donationForm struct {
	Amount, Name, Email, Message string
	Errors                       map[string]string // field name → message
}

type receiptData struct {
	Reference  string
	Amount     string // formatted, e.g. "£25.00"
	Name       string
	Message    string
	BodyBytes  int
	BodySHA256 string // lowercase hex
}

func (s *Site) donateForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "donate", "donate", "Donate", donationForm{})
}

// donate accepts a donation: 413 for bodies over MaxDonateBytes, 422 with
// the form and its errors for invalid fields, else a receipt that echoes the
// amount and the SHA-256 of the exact body received (also in
// BodySHA256Header).
func (s *Site) donate(w http.ResponseWriter, r *http.Request) {
	body, sum, v, ok := s.postedForm(w, r, MaxDonateBytes)
	if !ok {
		return
	}
	f := donationForm{
		Amount:  strings.TrimSpace(v.Get("amount")),
		Name:    strings.TrimSpace(v.Get("name")),
		Email:   strings.TrimSpace(v.Get("email")),
		Message: strings.TrimSpace(v.Get("message")),
		Errors:  map[string]string{},
	}
	pence, err := parseAmount(f.Amount)
	if err != nil {
		f.Errors["amount"] = err.Error()
	}
	checkText(f.Errors, "name", f.Name, 200, true)
	checkEmail(f.Errors, f.Email)
	checkText(f.Errors, "message", f.Message, 1000, false)
	if len(f.Errors) > 0 {
		s.render(w, r, http.StatusUnprocessableEntity, "donate", "donate", "Donate", f)
		return
	}
	s.render(w, r, http.StatusOK, "receipt", "donate", "Thank you", receiptData{
		Reference:  "DON-" + strings.ToUpper(sum[:10]),
		Amount:     fmt.Sprintf("£%d.%02d", pence/100, pence%100),
		Name:       f.Name,
		Message:    f.Message,
		BodyBytes:  len(body),
		BodySHA256: sum,
	})
}

var amountRE = regexp.MustCompile(`^[0-9]{1,6}(\.[0-9]{1,2})?$`)

// maxDonationPence is the largest accepted donation, £100,000.
const maxDonationPence = 100_000_00

// parseAmount parses a pound amount such as "25", "25.5" or "£25.50" into
// pence, in (0, maxDonationPence].
func parseAmount(s string) (int64, error) {
	s = strings.TrimPrefix(s, "£")
	if !amountRE.MatchString(s) {
		return 0, errors.New("Enter an amount in pounds, for example 25 or 25.50.")
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.ParseInt(whole, 10, 64) // regexp guarantees digits, ≤ 6 of them
	f, _ := strconv.ParseInt(frac, 10, 64)
	p := w*100 + f
	if p <= 0 || p > maxDonationPence {
		return 0, errors.New("Enter an amount between £0.01 and £100,000.")
	}
	return p, nil
}

func checkText(errs map[string]string, field, v string, maxRunes int, required bool) {
	switch {
	case required && v == "":
		errs[field] = "This field is required."
	case !utf8.ValidString(v):
		errs[field] = "This field contains invalid characters."
	case utf8.RuneCountInString(v) > maxRunes:
		errs[field] = fmt.Sprintf("Please use at most %d characters.", maxRunes)
	}
}

func checkEmail(errs map[string]string, v string) {
	if a, err := mail.ParseAddress(v); err != nil || a.Address != v || len(v) > 254 {
		errs["email"] = "Enter an email address, for example name@example.org."
	}
}

// volunteerAreas returns the choices of the volunteer form's "area" field.
func volunteerAreas() []string {
	return []string{"Canvassing", "Phone banking", "Events", "Digital", "Something else"}
}

type volunteerForm struct {
	Name, Email, Area, Notes string
	Areas                    []string
	Errors                   map[string]string
}

type volunteerThanks struct {
	Name, Area string
	BodySHA256 string
}

func (s *Site) volunteerForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "volunteer", "volunteer", "Volunteer", volunteerForm{Areas: volunteerAreas()})
}

// volunteer records nothing; it validates the form and thanks the sender
// (422 with errors, 413 over 64 KiB).
func (s *Site) volunteer(w http.ResponseWriter, r *http.Request) {
	_, sum, v, ok := s.postedForm(w, r, maxFormBytes)
	if !ok {
		return
	}
	f := volunteerForm{
		Name:   strings.TrimSpace(v.Get("name")),
		Email:  strings.TrimSpace(v.Get("email")),
		Area:   v.Get("area"),
		Notes:  strings.TrimSpace(v.Get("notes")),
		Areas:  volunteerAreas(),
		Errors: map[string]string{},
	}
	checkText(f.Errors, "name", f.Name, 200, true)
	checkEmail(f.Errors, f.Email)
	checkText(f.Errors, "notes", f.Notes, 2000, false)
	known := false
	for _, a := range f.Areas {
		known = known || a == f.Area
	}
	if !known {
		f.Errors["area"] = "Choose one of the areas listed."
	}
	if len(f.Errors) > 0 {
		s.render(w, r, http.StatusUnprocessableEntity, "volunteer", "volunteer", "Volunteer", f)
		return
	}
	s.render(w, r, http.StatusOK, "volunteer_thanks", "volunteer", "Thank you",
		volunteerThanks{Name: f.Name, Area: f.Area, BodySHA256: sum})
}

func (s *Site) uploadForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "upload", "", "Upload a file", nil)
}
