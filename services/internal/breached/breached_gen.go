//go:build ignore

// breached_gen writes breached_passwords.txt, the breached-password list
// package breached embeds. Run it with `go generate ./services/internal/breached`.
//
// The list is built offline and deterministically from two sources:
//
//  1. well-known passwords: the head of the public "most common passwords"
//     rankings compiled from breach corpora (RockYou, the 2009-2020 top
//     lists published by SplashData/NordPass and the SecLists top lists),
//     written out below by hand;
//  2. the mutations every cracking rule set tries first on them: digit,
//     year and symbol suffixes, doubling, "iloveyou"/"my" prefixes, and
//     the digit runs, repeats and keyboard walks people pick when a site
//     asks for a long password.
//
// Everything is lower-cased (the check is case-insensitive), so
// capitalisation variants need no entries. Only mutations of 12 or more
// characters are kept: shorter ones fail every tenant's minimum length
// (12 at least) anyway; the well-known list is kept whole, so a short
// breached password is reported as both too short and breached.
//
// This is not a breach corpus; it approximates the head of one. A
// deployment that wants more calls a breach service (k-anonymity) or
// replaces the file with a larger list in the same format.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

// common are well-known breached passwords, most common first (roughly).
const common = `
123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon
123123 baseball abc123 football monkey letmein 696969 shadow master 666666
qwertyuiop 123321 mustang 1234567890 michael 654321 superman 1qaz2wsx 7777777 121212
000000 qazwsx 123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh hunter
buster soccer harley batman andrew tigger sunshine iloveyou 2000 charlie
robert thomas hockey ranger daniel starwars klaster 112233 george computer
michelle jessica pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777
pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer
love ashley nicole chelsea biteme matthew access yankees 987654321 dallas
austin thunder taylor matrix william corvette hello martin heather secret
merlin diamond 1234qwer gfhjkm hammer silver 222222 88888888 anthony justin
test bailey q1w2e3r4t5 patrick internet scooter orange 11111 golfer cookie
richard samantha bigdog guitar jackson whatever mickey chicken sparky snoopy
maverick phoenix camaro peanut morgan welcome falcon cowboy ferrari samsung
andrea smokey steelers joseph mercedes dakota arsenal eagles melissa boomer
booboo spider nascar monster tigers yellow xxxxxx 123123123 gateway marina
diablo bulldog qwer1234 compaq purple hardcore banana junior hannah 123654
porsche lakers iceman money cowboys 987654 london tennis 999999 ncc1701
coffee scooby 0000 miller boston q1w2e3r4 brandon yamaha chester mother
forever johnny edward 333333 oliver redsox player nikita knight fender
barney midnight please brandy chicago badboy slayer rangers charles angel
flower bigdaddy rabbit wizard jasper enter rachel chris steven winner
adidas victoria natasha 1q2w3e4r jasmine winter prince panties marine
ghbdtn fishing cocacola casper james 232323 raiders 888888 marlboro gandalf
asdfasdf crystal 87654321 12344321 golden 8675309 panther lauren angela
bitch spanky thx1138 angels madison winston shannon mike toyota jordan23
canada sophie apples tiger cameron runner chance blowme captain jackie
ireland zzzzzz hotdog tucker sandra 147258369 password1 iloveu princess1
1234561 lovely rockyou babygirl nicole1 daniel1 michael1 jessica1 654321a
iloveyou1 lovers teamo jonathan friends butterfly anthony1 liverpool
123abc carlos bubbles hottie tinkerbell elizabeth 0123456789 alexander
qwerty123 password123 1q2w3e 1q2w3e4r5t 1qaz2wsx3edc zaq12wsx 123qweasd
qweasdzxc qazwsxedc qwerty1 qwerty12 123456a a123456 123456q abcd1234
aa123456 abc12345 12qwaszx q1w2e3 1qazxsw2 p@ssw0rd passw0rd p@ssword
pa55word pa$$word password12 password2 password! welcome1 letmein1
admin admin123 administrator root toor changeme default guest user
login test123 testing demo sample secret123 master123 monkey123 dragon123
iloveyou2 iloveyou123 iloveme mylove loveyou loveme sweetheart babyboy
babydoll cutie cutiepie sweetie honey sugar angel1 angel123 jesus jesus1
christ god blessed faith grace heaven hallelujah amen trinity
daniela alejandro alejandra gabriela gabriel miguel antonio fernando
roberto ricardo eduardo francisco javier carolina andres sebastian
valentina camila isabella sofia santiago mariana estrella princesa
corazon mariposa tequiero teamo1 amor amorcito miamor
naruto sasuke pokemon pikachu spongebob dragonball onepiece sakura
hellokitty barbie mickeymouse minnie donald goofy scoobydoo tweety
superstar rockstar pornstar playboy sexy sexygirl hottie1 lover loverboy
babygirl1 babyblue blink182 eminem 50cent chrisbrown beyonce rihanna
justinbieber onedirection metallica nirvana slipknot greenday linkinpark
michaeljackson harrypotter hogwarts voldemort gryffindor starwars1
skywalker darthvader yoda chewbacca jedi matrix1 neo morpheus
batman1 superman1 spiderman ironman hulk thor captainamerica avengers
wolverine deadpool joker gotham catwoman
football1 baseball1 soccer1 basketball hockey1 volleyball softball
tennis1 golf golfer1 nfl nba yankees1 redsox1 cowboys1 steelers1
lakers1 bulls chicagobulls manutd manchester chelsea1 arsenal1
liverpool1 barcelona realmadrid juventus milan ronaldo messi
cristiano beckham jordan1 kobe lebron
mustang1 corvette1 ferrari1 porsche1 camaro1 harley1 yamaha1 honda
toyota1 nissan bmw mercedes1 audi chevy ford jeep
dolphin dolphins eagle eagles1 falcon1 lion tiger1 tigers1 bear bears
wolf wolves shark monkey1 kitty kitten puppy doggy doggie snoopy1 bunny
pussycat cat dog horse horses pony turtle panda penguin elephant giraffe
dragon1 unicorn phoenix1 griffin
summer1 winter1 spring autumn fall sunshine1 rainbow sunny moon star
stars starlight midnight1 thunder1 lightning storm snow snowball
flower1 flowers rose roses daisy lily tulip orchid jasmine1 violet
orange1 apple apple1 banana1 cherry strawberry peach lemon mango
chocolate cookie1 cupcake candy icecream pizza burger cheese1 bacon
coffee1 beer whiskey vodka tequila
purple1 yellow1 green blue red black white pink silver1 golden1
diamond1 crystal1 ruby emerald sapphire pearl
monday tuesday friday sunday january february march april may june
july august september october november december
london1 paris newyork california florida texas chicago1 boston1 dallas1
miami vegas tokyo berlin moscow america usa canada1 mexico brazil
england scotland ireland1 australia germany france italy spain india
china japan korea russia
computer1 internet1 google yahoo hotmail gmail facebook myspace
twitter youtube instagram linkedin microsoft windows apple123 iphone
samsung1 nokia sony playstation xbox nintendo
whatever1 nothing something anything everything nobody somebody
hello1 hello123 hi hey welcome123 goodbye thankyou please1
letmein123 trustno1a openup opensesame access1 access14 entry
secret1 private mysecret hidden unknown
superman123 batman123 qwerty12345 qwertyuiop1 asdfghjkl asdfghjkl1
zxcvbnm1 zxcvbnm123 qazxswedc 1qaz2wsx3edc4rfv zaq1xsw2 zaq1zaq1
!qaz2wsx 1qaz@wsx 1q2w3e4r5t6y 1q2w3e4r5t6y7u8i
q1w2e3r4t5y6 qwe123 qwe123qwe asd123 zxc123 qweqwe asdasd zxczxc
123qwe123 qwerasdf asdf1234 asdf zxcv qwer
aaaaaaaa abcdef abcdefg abcdefgh abc abcabc abcd abc123456
a1b2c3 a1b2c3d4 1a2b3c4d abc123abc
112233445566 11223344 121212121212 123123123123 123321123
1231234 12341234 123456123456 12345612345 147258 147258369
147852 147852369 159357 159753456 258456 258369 321321 369369
456456 456789 741852963 789456 789456123 951753 963852741
1111111 11111111111 1234512345 0987654321 09876543
098765 102030 101010 111222 112211 123000 123654789
135790 135792468 246810 2468 13579 5201314 520520 1314520
000000000 00000000 0000000 999999999 99999999 9999999
8888888 88888 6666666 66666666 5555555 55555555 4444444 444444
3333333 33333333 2222222 22222222 1212 6969 69696969 4200
pussy fuckyou fuckoff fuckme fucker fuck asshole bitch1 shit
bullshit dick cock penis vagina boobs tits sex sex123
horny naughty kinky slut whore damn hell
killer1 hunter1 hunter2 shooter sniper soldier warrior ninja samurai
pirate viking knight1 king queen princess123 prince1 lord master1
boss chief captain1 commander general major
matthew1 andrew1 joshua1 robert1 thomas1 william1 james1 john johnny1
david david1 chris1 christopher jason justin1 brandon1 ryan kevin
steven1 richard1 charles1 joseph1 daniel123 michael123 jessica123
ashley1 amanda1 jennifer1 melissa1 sarah sarah1 emily emma olivia
sophia isabella1 hannah1 madison1 abigail elizabeth1 samantha1 lauren1
rachel1 nicole123 michelle1 stephanie heather1 amber brittany
tiffany courtney crystal123 danielle megan kimberly rebecca
alexis alex alex123 sam sammy max max123 charlie1 buddy buddy1 rocky
lucky lucky1 lucky7 ginger1 bailey1 maggie1 molly sadie sophie1
chloe lucy daisy1 bella coco zoe
mother1 father mom dad mommy daddy family family1 friend friends1
bestfriend brother sister baby baby1 babies children
money1 money123 cash dollar rich million billion
gold gold123 bank banker
love1 love123 lovelove loveyou1 iloveu2 iluvu mylove1 truelove
onelove forever1 always together heart hearts kisses kiss kissme
hugs romance romantic
happy happy1 happy123 smile smiley funny fun crazy
cool cool123 awesome sweet sweet16 cute pretty beautiful gorgeous
lovely1 angelica angelina angel12 angelface
jordan123 michael23 kobe24 lebron23
1qaz 2wsx 3edc qazwsx123 qazwsx1 wsxedc edcrfv
poiuytrewq lkjhgfdsa mnbvcxz 0987poiu poiuyt
azerty azertyuiop qwertz qwertzuiop asdfg asdfgh1 ytrewq
password01 password11 password13 password22 password99 password007
pass123 pass1234 pass12345 passw0rd1 passwort motdepasse contrasena
contraseña senha parola salasana wachtwoord haslo heslo
iloveyou! password!1 welcome! letmein!
trustme believe dreamer dreams destiny freedom1 liberty justice
peace peaceful hope faith1 spirit soul
gangsta gangster thug hustler player1 playa pimp pimpin
ghetto hood homie dawg dude
hiphop rap music music1 guitar1 piano drums singer dancer dance
rock rocknroll punk metal
school school1 student teacher college university
science biology physics chemistry math history english
doctor nurse police fireman
jesuschrist jesus123 jesusfreak godisgood godislove blessed1
angel01 angels1 heaven1
zaq123 xsw234 cde345
qwerty7 qwerty01 qwerty11 qwerty13 qwerty69 qwerty99
abcdefg123 abcdef123 abcd123 abc1234
asdf123 asdfgh123 asdfjkl; asdfghjk
1password password0 passwordpassword passpass
changeme1 changeme123 newpassword newpass mypassword mypass
temp temp123 temppass temporary
default1 guest123 user123 user1 test1 test1234 testtest tester
admin1 admin1234 admin12345 administrator1 adminadmin root123 rootroot
sysadmin system system1 manager manager1 office office1 work
company business service support support123 helpdesk
oracle mysql postgres database server server1 network
cisco linux ubuntu debian redhat unix windows1 windows7 windows10
apple12 macintosh mac
security security1 secure secure123 firewall
letmeinnow letmein2 letmein12
starwars123 startrek enterprise
matrix123 zion
minecraft fortnite roblox warcraft worldofwarcraft counterstrike
callofduty halo zelda mario luigi sonic
pokemon1 pikachu1 charizard
yugioh digimon dragonballz goku vegeta
naruto1 narutouzumaki sasuke1 itachi kakashi
onepiece1 luffy zoro
doraemon totoro
chelsea123 arsenal123 liverpool123 manutd123
barcelona1 realmadrid1 juventus1
ronaldo7 cristiano7 messi10 neymar
qwerty1234 qwerty123456 qwertyui qwertyu
1234abcd 12345abc 12345qwert 12345qwerty 123456789a 123456789q
1234567a 1234567q 12345678a 12345678q a12345678 a123456789
q123456 q1234567 q12345678 q123456789 qq123456 zz123456
woaini 5201314a woaini1314 iloveyou520
aini1314 wo123456
`

// suffixes are appended to every well-known password.
var suffixes = []string{
	"1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789",
	"!", "1!", "12!", "123!", "!!", "@123", "#1", "01", "007", "69", "99", "00",
	"2000", "2001", "2002", "2003", "2004", "2005", "2006", "2007", "2008", "2009",
	"2010", "2011", "2012", "2013", "2014", "2015", "2016", "2017", "2018", "2019",
	"2020", "2021", "2022", "2023", "2024", "2025", "2026",
	"1990", "1995", "1999",
}

// walks are keyboard walks and sequences people stretch to any length.
var walks = []string{
	"1234567890", "0987654321", "qwertyuiop", "asdfghjkl", "zxcvbnm",
	"1qaz2wsx3edc4rfv5tgb", "qazwsxedcrfvtgb", "1q2w3e4r5t6y7u8i9o0p",
	"q1w2e3r4t5y6u7i8o9p0", "abcdefghijklmnopqrstuvwxyz", "azertyuiop",
	"qwertzuiop", "zaq1xsw2cde3vfr4", "!qaz@wsx#edc", "1qaz!qaz",
}

// minMutationLength is the lowest minimum length a tenant can set.
const minMutationLength = 12

func main() {
	set := map[string]bool{}
	add := func(s string) { set[strings.ToLower(s)] = true }
	addLong := func(s string) {
		if len([]rune(s)) >= minMutationLength {
			add(s)
		}
	}
	base := strings.Fields(common)
	for _, w := range base {
		add(w)
	}
	for _, w := range base {
		for _, s := range suffixes {
			addLong(w + s)
		}
		addLong(w + w)
		addLong(w + w + "1")
		addLong("iloveyou" + w)
		addLong("my" + w)
		addLong(w + "password")
		addLong("password" + w)
	}
	// Digit runs and repeats of every length from 12 to 24.
	for n := minMutationLength; n <= 24; n++ {
		for d := '0'; d <= '9'; d++ {
			add(strings.Repeat(string(d), n))
		}
		asc := strings.Repeat("1234567890", 3)
		add(asc[:n])
		desc := strings.Repeat("9876543210", 3)
		add(desc[:n])
		add(strings.Repeat("0123456789", 3)[:n])
		for _, unit := range []string{"12", "123", "1234", "12345", "abc", "abcd", "qwe", "asd", "69", "007"} {
			add(strings.Repeat(unit, n/len(unit)+1)[:n])
		}
	}
	// Keyboard walks: every prefix from 12 characters, twice over and with
	// the usual suffixes.
	for _, w := range walks {
		for n := minMutationLength; n <= len(w); n++ {
			p := w[:n]
			add(p)
			for _, s := range []string{"1", "12", "123", "!", "1!"} {
				add(p + s)
			}
		}
		add(w + w)
	}
	lines := make([]string, 0, len(set))
	for s := range set {
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		lines = append(lines, s)
	}
	slices.Sort(lines)

	f, err := os.Create("breached_passwords.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# Breached passwords, lower case, sorted. Generated by breached_gen.go")
	fmt.Fprintln(w, "# (go generate ./services/internal/breached); do not edit. See breached_gen.go for")
	fmt.Fprintln(w, "# what the list holds and where it comes from.")
	for _, s := range lines {
		fmt.Fprintln(w, s)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("breached_passwords.txt: %d passwords (%d well-known)\n", len(lines), len(base))
}
