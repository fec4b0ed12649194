package email_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/email"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "as is", in: "alice@example.com", want: "alice@example.com"},
		{name: "case and spaces", in: "  Alice@Example.COM\t", want: "alice@example.com"},
		{name: "trailing dot of the domain", in: "alice@example.com.", want: "alice@example.com"},
		{name: "Unicode domain", in: "alice@Bücher.example", want: "alice@xn--bcher-kva.example"},
		{name: "A-label domain", in: "alice@XN--BCHER-KVA.example", want: "alice@xn--bcher-kva.example"},
		{name: "decomposed local part", in: "Jose\u0301@example.com", want: "jos\u00e9@example.com"},
		{name: "composed local part", in: "JOS\u00c9@example.com", want: "jos\u00e9@example.com"},
		{name: "last @ splits", in: `"a@b"@Example.com`, want: `"a@b"@example.com`},
		{name: "not an address", in: " Alice ", want: "alice"},
		{name: "invalid domain kept lower-cased", in: "a@EXA MPLE.com", want: "a@exa mple.com"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, email.Canonical(tt.in), tt.name)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in             string
		wantDisplay, wantKey string
	}{
		{name: "ASCII", in: " Ada.Lovelace@Example.COM ", wantDisplay: "Ada.Lovelace@Example.COM", wantKey: "ada.lovelace@example.com"},
		{name: "atext", in: "a+b!#$%&'*/=?^_`{|}~-@example.com", wantDisplay: "a+b!#$%&'*/=?^_`{|}~-@example.com", wantKey: "a+b!#$%&'*/=?^_`{|}~-@example.com"},
		{name: "NFD local part is stored NFC", in: "Jose\u0301@example.com", wantDisplay: "Jos\u00e9@example.com", wantKey: "jos\u00e9@example.com"},
		{name: "NFC local part", in: "Jos\u00e9@example.com", wantDisplay: "Jos\u00e9@example.com", wantKey: "jos\u00e9@example.com"},
		{name: "IDNA domain", in: "ada@Bücher.Example", wantDisplay: "ada@Bücher.Example", wantKey: "ada@xn--bcher-kva.example"},
		{name: "A-label domain", in: "ada@XN--BCHER-KVA.example", wantDisplay: "ada@XN--BCHER-KVA.example", wantKey: "ada@xn--bcher-kva.example"},
		{name: "Cyrillic local part, Latin domain", in: "Иван@example.com", wantDisplay: "Иван@example.com", wantKey: "иван@example.com"},
		{name: "Cyrillic domain", in: "ivan@пример.рф", wantDisplay: "ivan@пример.рф", wantKey: "ivan@xn--e1afmkfd.xn--p1ai"},
		{name: "Japanese mixes Han, kana and Latin", in: "山田taro@例え.jp", wantDisplay: "山田taro@例え.jp", wantKey: "山田taro@xn--r8jz45g.jp"},
		{name: "Greek", in: "Σωκράτης@example.gr", wantDisplay: "Σωκράτης@example.gr", wantKey: "σωκράτης@example.gr"},
		{name: "trailing dot", in: "ada@example.com.", wantDisplay: "ada@example.com.", wantKey: "ada@example.com"},
		{name: "katakana with the prolonged sound mark", in: "スーパー@example.jp", wantDisplay: "スーパー@example.jp", wantKey: "スーパー@example.jp"},
		{name: "open e and o (Ewe, Lingala)", in: "kɔfɛ@example.com", wantDisplay: "kɔfɛ@example.com", wantKey: "kɔfɛ@example.com"},
		{name: "sharp s", in: "Straße@example.de", wantDisplay: "Straße@example.de", wantKey: "straße@example.de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := email.Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.wantDisplay, got.Display)
			assert.Equal(t, tt.wantKey, got.Canonical)
			assert.Equal(t, email.Canonical(tt.in), got.Canonical, "Canonical agrees with Parse on valid addresses")
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantRule string
	}{
		{name: "no @", in: "ada", wantRule: "email.syntax"},
		{name: "empty", in: "", wantRule: "email.syntax"},
		{name: "no local part", in: "@example.com", wantRule: "email.syntax"},
		{name: "no domain", in: "ada@", wantRule: "email.syntax"},
		{name: "double dot", in: "ada..l@example.com", wantRule: "email.syntax"},
		{name: "quoted local part", in: `"a@b"@example.com`, wantRule: "email.syntax"},
		{name: "space inside", in: "ada lovelace@example.com", wantRule: "email.invisible"},
		{name: "bad domain", in: "ada@exa_mple.com", wantRule: "email.syntax"},
		{name: "empty domain label", in: "ada@example..com", wantRule: "email.syntax"},
		{name: "zero-width space", in: "ada\u200b@example.com", wantRule: "email.invisible"},
		{name: "zero-width joiner in the domain", in: "ada@exam\u200dple.com", wantRule: "email.invisible"},
		{name: "right-to-left override", in: "\u202emoc.elpmaxe@ada", wantRule: "email.invisible"},
		{name: "left-to-right mark", in: "ada@example.com\u200e", wantRule: "email.invisible"},
		{name: "soft hyphen", in: "ada@exam\u00adple.com", wantRule: "email.invisible"},
		{name: "Hangul filler", in: "ada\u3164@example.com", wantRule: "email.invisible"},
		{name: "control character", in: "ada\x00@example.com", wantRule: "email.invisible"},
		{name: "Latin and Cyrillic in the local part", in: "\u0430da@example.com", wantRule: "email.mixed_script"},
		{name: "Latin and Cyrillic in a domain label", in: "ada@ex\u0430mple.com", wantRule: "email.mixed_script"},
		{name: "Latin and Greek in the local part", in: "ad\u03b1@example.com", wantRule: "email.mixed_script"},
		{name: "Cyrillic that imitates Latin (apple)", in: "ada@\u0430\u0440\u0440\u04cf\u0435.com", wantRule: "email.confusable"},
		{name: "the same as an A-label", in: "ada@xn--80ak6aa92e.com", wantRule: "email.confusable"},
		{name: "Cyrillic local part that imitates Latin", in: "\u0441\u043e\u0440\u0435@example.com", wantRule: "email.confusable"},
		{name: "invalid UTF-8", in: "ada\xff@example.com", wantRule: "email.syntax"},
		{name: "fullwidth local part", in: "\uff41\uff44\uff4d\uff49\uff4e@example.com", wantRule: "email.confusable"},       // ａｄｍｉｎ
		{name: "fullwidth domain", in: "admin@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", wantRule: "email.confusable"}, // ｅｘａｍｐｌｅ
		{name: "one fullwidth letter", in: "adm\uff49n@example.com", wantRule: "email.confusable"},
		{name: "mathematical bold local part", in: "\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427@example.com", wantRule: "email.confusable"}, // 𝐚𝐝𝐦𝐢𝐧
		{name: "mathematical bold domain", in: "admin@\U0001d41e\U0001d431ample.com", wantRule: "email.confusable"},
		{name: "small capitals", in: "\u1d00\u1d05\u1d0d\u026a\u0274@example.com", wantRule: "email.confusable"}, // ᴀᴅᴍɪɴ
		{name: "one small capital", in: "adm\u026an@example.com", wantRule: "email.confusable"},
		{name: "small capitals as an A-label", in: "admin@xn--9nau005rua4b.com", wantRule: "email.confusable"},
		{name: "ligature", in: "\ufb01le@example.com", wantRule: "email.confusable"}, // ﬁle
		{name: "feminine ordinal", in: "\u00aadmin@example.com", wantRule: "email.confusable"},
		{name: "halfwidth katakana", in: "\uff76\uff80\uff76\uff85@example.jp", wantRule: "email.confusable"},
		{name: "Common modifier letter", in: "ada\u02bb@example.com", wantRule: "email.confusable"},
		{name: "only Common letters", in: "\u02bb\u02bc@example.com", wantRule: "email.confusable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := email.Parse(tt.in)
			require.Error(t, err)
			var e *email.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.wantRule, e.Rule, e.Message)
			assert.True(t, errors.Is(err, email.ErrInvalid))
		})
	}
}
