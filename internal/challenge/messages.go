package challenge

import (
	"strconv"
	"strings"
)

// Messages is one language's text for the shield's challenge pages. Every
// field is plain text (HTML-escaped when rendered). Texts the browser
// script shows carry placeholders: {p} (a percentage) in Progress.
type Messages struct {
	// Title is the document title (before " · site name").
	Title string
	// Heading is the interstitial's h1.
	Heading string
	// Explain is the interstitial's first paragraph.
	Explain string
	// Working is announced when the check starts.
	Working string
	// Progress is announced every few seconds; {p} is replaced by a number.
	Progress string
	// Done is announced when the check succeeded and the page follows.
	Done string
	// DoneManual is shown when the check succeeded on a page that waits
	// for the visitor (the refused-form page).
	DoneManual string
	// NoJS explains the no-JavaScript path; {n} is replaced by seconds.
	NoJS string
	// NeedJS replaces NoJS when the no-JavaScript path is disabled.
	NeedJS string
	// Continue labels the submit buttons.
	Continue string
	// ContinueNoJS labels the fallback button shown when the script fails.
	ContinueNoJS string
	// Late is shown when the check has not started after 10 seconds.
	Late string
	// ScriptError is announced when the check cannot run.
	ScriptError string
	// Retry labels the retry link.
	Retry string
	// CookiesHeading and Cookies explain that cookies are required.
	CookiesHeading, Cookies string
	// FormHeading and Form explain that a submitted form was not sent.
	FormHeading, Form string
	// FailedHeading and Failed: the submitted check was not accepted.
	FailedHeading, Failed string
	// Used: the check was already used.
	Used string
	// WaitHeading and Wait: the no-JavaScript form came back too early.
	WaitHeading, Wait string
	// RequestID labels the request id; Footer follows it.
	RequestID, Footer string
}

// DefaultCatalogue returns the built-in messages by language tag: "en"
// (the fallback) and "de". Callers may add languages or replace texts in
// the returned map and pass it as Options.Catalogue.
func DefaultCatalogue() map[string]Messages {
	return map[string]Messages{
		"en": {
			Title:          "Checking your browser",
			Heading:        "Checking that you are a person",
			Explain:        "This site is under heavy attack. We are checking that you are a person, which may take a few seconds.",
			Working:        "Checking. This may take a few seconds.",
			Progress:       "Still checking, {p} percent done.",
			Done:           "Check complete. Taking you to the page.",
			DoneManual:     "Check complete. Press Continue.",
			NoJS:           "JavaScript is turned off, which is fine: wait about {n} seconds, then press Continue. Your browser must accept cookies from this site.",
			NeedJS:         "This check needs JavaScript. Please turn it on for this site, or try again later.",
			Continue:       "Continue",
			ContinueNoJS:   "Continue without the script (takes a few seconds)",
			Late:           "The check has not started. A script may be blocked or the connection may be slow.",
			ScriptError:    "The check could not run in your browser.",
			Retry:          "Try again",
			CookiesHeading: "Cookies required",
			Cookies:        "Your browser did not send back the cookie this site set. The check needs one cookie to remember that you passed. Please allow cookies for this site, then try again.",
			FormHeading:    "Your form was not sent",
			Form:           "This site is under heavy attack and your browser has not been checked yet, so nothing you entered has been sent. When the check below is complete, go back to the form and send it again.",
			FailedHeading:  "The check did not succeed",
			Failed:         "The check could not be completed. Please try again.",
			Used:           "This check has already been used. If the page does not appear, try again.",
			WaitHeading:    "Almost there",
			Wait:           "Please wait a few more seconds, then press Continue.",
			RequestID:      "Request id",
			Footer:         "If this keeps happening, contact the site's team and quote the request id.",
		},
		"de": {
			Title:          "Überprüfung Ihres Browsers",
			Heading:        "Wir prüfen, ob Sie ein Mensch sind",
			Explain:        "Diese Website wird gerade massiv angegriffen. Wir prüfen, ob Sie ein Mensch sind. Das kann einige Sekunden dauern.",
			Working:        "Prüfung läuft. Das kann einige Sekunden dauern.",
			Progress:       "Prüfung läuft, {p} Prozent erledigt.",
			Done:           "Prüfung abgeschlossen. Sie werden zur Seite weitergeleitet.",
			DoneManual:     "Prüfung abgeschlossen. Bitte auf „Weiter“ drücken.",
			NoJS:           "JavaScript ist ausgeschaltet, das ist in Ordnung: Warten Sie etwa {n} Sekunden und drücken Sie dann „Weiter“. Ihr Browser muss Cookies dieser Website annehmen.",
			NeedJS:         "Diese Prüfung braucht JavaScript. Bitte schalten Sie es für diese Website ein oder versuchen Sie es später erneut.",
			Continue:       "Weiter",
			ContinueNoJS:   "Ohne Skript fortfahren (dauert einige Sekunden)",
			Late:           "Die Prüfung hat nicht begonnen. Vielleicht wird ein Skript blockiert oder die Verbindung ist langsam.",
			ScriptError:    "Die Prüfung konnte in Ihrem Browser nicht ausgeführt werden.",
			Retry:          "Erneut versuchen",
			CookiesHeading: "Cookies erforderlich",
			Cookies:        "Ihr Browser hat das Cookie dieser Website nicht zurückgesendet. Die Prüfung braucht ein Cookie, um sich zu merken, dass Sie sie bestanden haben. Bitte erlauben Sie Cookies für diese Website und versuchen Sie es erneut.",
			FormHeading:    "Ihr Formular wurde nicht gesendet",
			Form:           "Diese Website wird gerade massiv angegriffen und Ihr Browser wurde noch nicht geprüft, daher wurde nichts von Ihren Eingaben gesendet. Wenn die Prüfung unten abgeschlossen ist, gehen Sie zurück zum Formular und senden Sie es erneut.",
			FailedHeading:  "Die Prüfung war nicht erfolgreich",
			Failed:         "Die Prüfung konnte nicht abgeschlossen werden. Bitte versuchen Sie es erneut.",
			Used:           "Diese Prüfung wurde bereits verwendet. Falls die Seite nicht erscheint, versuchen Sie es erneut.",
			WaitHeading:    "Gleich geschafft",
			Wait:           "Bitte warten Sie noch einige Sekunden und drücken Sie dann „Weiter“.",
			RequestID:      "Anfrage-ID",
			Footer:         "Wenn das immer wieder passiert, wenden Sie sich an das Team der Website und nennen Sie die Anfrage-ID.",
		},
	}
}

// pickLanguage returns the catalogue tag that best matches an
// Accept-Language header (RFC 9110 §12.5.4): the supported tag with the
// highest q-value, matching a language range by its primary subtag
// ("de-CH" matches "de"); "*" and no match give fallback.
func pickLanguage(header string, supported map[string]Messages, fallback string) string {
	best, bestQ := fallback, -1.0
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ",")
		tag, params, _ := strings.Cut(part, ";")
		tag = strings.TrimSpace(tag)
		q := 1.0
		if p := strings.TrimSpace(params); strings.HasPrefix(p, "q=") {
			if v, err := strconv.ParseFloat(p[2:], 64); err == nil {
				q = v
			}
		}
		if q <= 0 || q <= bestQ || tag == "" || tag == "*" {
			continue
		}
		primary, _, _ := strings.Cut(tag, "-")
		for _, cand := range [2]string{tag, primary} {
			if _, ok := supported[strings.ToLower(cand)]; ok {
				best, bestQ = strings.ToLower(cand), q
				break
			}
		}
	}
	return best
}
