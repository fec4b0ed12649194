// Package email holds the canonical form of email addresses that every
// service keys accounts by, and the stricter parsing identity applies to
// the addresses it registers.
//
// The canonical form makes every spelling of an address one account:
// surrounding space removed, Unicode NFC, the local part lower-cased and
// the domain mapped to its IDNA ASCII form (UTS #46 lookup: lower case,
// A-labels, no trailing dot). [Canonical] computes it for any input and
// never fails (risk keys whatever a user typed); [Parse] validates an
// address first and refuses what could impersonate another address:
// invisible characters (zero-width, bidi controls, other format and
// default-ignorable code points), labels that mix scripts (Latin with
// Cyrillic, say), labels written entirely in Cyrillic or Greek letters
// that look Latin ("аррӏе", "ехаmрlе" in Cyrillic), and letters that
// imitate plain ones without being them: compatibility characters, which
// NFKC would change (fullwidth "ａｄｍｉｎ", mathematical bold "𝐚𝐝𝐦𝐢𝐧",
// ligatures), letters of no script (Common or Inherited, such as
// modifier letters) and small capitals ("ᴀᴅᴍɪɴ").
package email

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// MaxLength is the longest address accepted, in bytes of its canonical form
// (RFC 5321's path limit less the angle brackets).
const MaxLength = 254

// maxLocalLength is RFC 5321's limit of the local part, in bytes.
const maxLocalLength = 64

// lenientDomain maps a domain for [Canonical]: lookup mapping, no
// validation beyond what the mapping needs.
var lenientDomain = idna.New(idna.MapForLookup(), idna.Transitional(false))

// strictDomain maps and validates a domain for [Parse]: UTS #46 lookup
// with the bidi rule, label validation and host-name characters only.
var strictDomain = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(),
	idna.ValidateLabels(true), idna.StrictDomainName(true), idna.VerifyDNSLength(true))

// Canonical returns the canonical form of s, which decides whether two
// spellings are the same address. Input that is not an address is
// returned trimmed, NFC and lower case; a domain that does not map is
// kept lower-cased.
func Canonical(s string) string {
	e := norm.NFC.String(strings.TrimSpace(s))
	i := strings.LastIndexByte(e, '@')
	if i < 0 {
		return lower(e)
	}
	local, domain := e[:i], strings.TrimSuffix(e[i+1:], ".")
	if a, err := lenientDomain.ToASCII(domain); err == nil {
		domain = a
	}
	return lower(local) + "@" + strings.ToLower(domain)
}

// lower lower-cases s and keeps it NFC (lower-casing can decompose).
func lower(s string) string { return norm.NFC.String(strings.ToLower(s)) }

// Fold returns s trimmed, NFC and lower case, as [Canonical] folds an
// address's local part, so that a search text can be looked for inside
// canonical addresses. It maps no domain: a search for an
// internationalised domain name spells its ASCII (punycode) form.
func Fold(s string) string { return lower(norm.NFC.String(strings.TrimSpace(s))) }

// Address is a valid email address.
type Address struct {
	// Display is the address as the user chose to spell it: trimmed and
	// NFC, case kept.
	Display string
	// Canonical is its canonical form (see [Canonical]).
	Canonical string
}

// Error reports an address [Parse] refuses. Rule names the broken rule
// ("email.syntax", "email.invisible", "email.mixed_script",
// "email.confusable") and Message says what is wrong, for the user.
type Error struct {
	Rule, Message string
}

func (e *Error) Error() string { return e.Message }

// ErrInvalid matches every *Error with errors.Is.
var ErrInvalid = errors.New("invalid email address")

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func syntaxError(msg string) *Error { return &Error{Rule: "email.syntax", Message: msg} }

// Parse validates s as an email address and returns its display and
// canonical forms. The local part is a dot-atom of ASCII atext and Unicode
// letters, marks and digits (RFC 6531; no quoted strings); the domain is a
// host name, Unicode or A-labels.
func Parse(s string) (Address, error) {
	if !utf8.ValidString(s) {
		return Address{}, syntaxError("must be valid UTF-8")
	}
	display := norm.NFC.String(strings.TrimSpace(s))
	for _, r := range display {
		if invisible(r) {
			return Address{}, &Error{Rule: "email.invisible", Message: "must not contain invisible or control characters"}
		}
	}
	i := strings.LastIndexByte(display, '@')
	if i < 0 {
		return Address{}, syntaxError("must be an email address")
	}
	local, domain := display[:i], strings.TrimSuffix(display[i+1:], ".")
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	// IDNA would map a fullwidth or styled domain to its plain form; the
	// local part keeps them. Either way the address pretends to be another.
	if norm.NFKC.String(local) != local || norm.NFKC.String(domain) != domain {
		return Address{}, errImitation
	}
	if domain == "" {
		return Address{}, syntaxError("must have a domain")
	}
	ascii, err := strictDomain.ToASCII(domain)
	if err != nil {
		return Address{}, syntaxError("must have a valid domain")
	}
	ascii = strings.ToLower(ascii)
	unicodeDomain, err := strictDomain.ToUnicode(ascii)
	if err != nil {
		return Address{}, syntaxError("must have a valid domain")
	}
	for _, label := range append([]string{local}, strings.Split(unicodeDomain, ".")...) {
		if err := checkScripts(lower(label)); err != nil {
			return Address{}, err
		}
	}
	canonical := lower(local) + "@" + ascii
	if len(canonical) > MaxLength {
		return Address{}, syntaxError("must be at most 254 bytes long")
	}
	return Address{Display: display, Canonical: canonical}, nil
}

// atext are the ASCII characters RFC 5322 allows in a dot-atom besides
// letters and digits.
const atext = "!#$%&'*+-/=?^_`{|}~"

func checkLocal(local string) error {
	switch {
	case local == "":
		return syntaxError("must have a local part before @")
	case len(local) > maxLocalLength:
		return syntaxError("must have a local part of at most 64 bytes")
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return syntaxError("must not start or end the local part with a dot, or have two dots in a row")
	}
	for _, r := range local {
		switch {
		case r == '.', r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
		case r < utf8.RuneSelf && strings.ContainsRune(atext, r):
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)):
		default:
			return syntaxError("must not contain " + quoteRune(r) + " in the local part")
		}
	}
	return nil
}

func quoteRune(r rune) string {
	if r == ' ' {
		return "spaces"
	}
	return "'" + string(r) + "'"
}

// invisible reports characters that render as nothing or reorder text:
// controls, format characters (zero-width space and joiners, bidi
// controls, the soft hyphen), other default-ignorable code points
// (the Hangul filler, say), variation selectors, private-use code points and
// white space.
func invisible(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r) ||
		unicode.IsSpace(r) || r == utf8.RuneError
}

// scriptTables are the scripts most letters of addresses belong to,
// looked up first.
var scriptTables = []struct {
	name  string
	table *unicode.RangeTable
}{
	{"Latin", unicode.Latin}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
	{"Armenian", unicode.Armenian}, {"Hebrew", unicode.Hebrew}, {"Arabic", unicode.Arabic},
	{"Han", unicode.Han}, {"Hiragana", unicode.Hiragana}, {"Katakana", unicode.Katakana},
	{"Bopomofo", unicode.Bopomofo}, {"Hangul", unicode.Hangul},
}

// allowedMixes are the script combinations of UTS #39's "highly
// restrictive" level: the scripts one writes Japanese, Chinese or Korean
// with, alongside Latin.
var allowedMixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// latinLookalikes are the Cyrillic and Greek lower-case letters that look
// like Latin ones in common fonts (the set browsers use to refuse
// whole-script confusable domains, plus Greek omicron, alpha, nu...).
const latinLookalikes = "асԁеһіјӏорԛѕԝхуъьҽпгѵѡ" + "αβικνορτυχ"

// errImitation refuses letters that imitate plain ones.
var errImitation = &Error{Rule: "email.confusable", Message: "must not contain styled, fullwidth or small capital letters that imitate plain ones"}

// smallCapitals are the small capital letters (Latin, Greek, Cyrillic) of
// the IPA Extensions, Phonetic Extensions and Latin Extended-D blocks:
// phonetic notation that NFKC leaves alone but that reads as capitals.
var smallCapitals = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x0262, Hi: 0x0262, Stride: 1}, {Lo: 0x026A, Hi: 0x026A, Stride: 1},
		{Lo: 0x0274, Hi: 0x0274, Stride: 1}, {Lo: 0x0276, Hi: 0x0276, Stride: 1},
		{Lo: 0x0280, Hi: 0x0281, Stride: 1}, {Lo: 0x028F, Hi: 0x028F, Stride: 1},
		{Lo: 0x0299, Hi: 0x0299, Stride: 1}, {Lo: 0x029B, Hi: 0x029C, Stride: 1},
		{Lo: 0x029F, Hi: 0x029F, Stride: 1},
		{Lo: 0x1D00, Hi: 0x1D2B, Stride: 1}, // small capitals and their turned forms
		{Lo: 0xA730, Hi: 0xA731, Stride: 1}, {Lo: 0xA7AE, Hi: 0xA7AE, Stride: 1},
		{Lo: 0xA7AF, Hi: 0xA7AF, Stride: 1}, {Lo: 0xA7B2, Hi: 0xA7B2, Stride: 1},
	},
}

// prolongedSoundMark (ー) is a Common letter that Japanese writes
// within katakana and hiragana words; it counts as Katakana.
const prolongedSoundMark = '\u30fc'

// checkScripts refuses a label (a local part or one domain label, lower
// case) whose letters mix scripts outside [allowedMixes], that is all
// Cyrillic or Greek letters that look Latin, or that has a letter of no
// script (Common or Inherited) or a small capital where a plain letter is
// expected.
func checkScripts(label string) error {
	scripts := map[string]bool{}
	lookalikesOnly, nonLatin := true, false
	for _, r := range label {
		if !unicode.IsLetter(r) {
			continue // digits, marks, punctuation: Common or Inherited
		}
		name := scriptOf(r)
		if r == prolongedSoundMark {
			name = "Katakana"
		}
		if name == "Common" || name == "Inherited" || unicode.Is(smallCapitals, r) {
			return errImitation
		}
		scripts[name] = true
		if name != "Latin" {
			nonLatin = true
		}
		if !strings.ContainsRune(latinLookalikes, r) {
			lookalikesOnly = false
		}
	}
	if len(scripts) > 1 && !allowedMix(scripts) {
		return &Error{Rule: "email.mixed_script", Message: "must not mix letters of different scripts in one part (Latin and Cyrillic, say)"}
	}
	if nonLatin && lookalikesOnly && (scripts["Cyrillic"] || scripts["Greek"]) {
		return &Error{Rule: "email.confusable", Message: "must not be written in letters that imitate Latin ones"}
	}
	return nil
}

// scriptOf names the script of a letter.
func scriptOf(r rune) string {
	for _, s := range scriptTables {
		if unicode.Is(s.table, r) {
			return s.name
		}
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

func allowedMix(scripts map[string]bool) bool {
	for _, mix := range allowedMixes {
		ok := true
		for s := range scripts {
			if !mix[s] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
