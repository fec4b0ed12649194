// Money in the console: the API counts integer minor units (bigint); people
// type and read decimal amounts. The number of minor digits of a currency
// is its ISO 4217 exponent, from the fixed table below, used both ways so
// what a person types is what they later read. Intl's own currency digits
// are not used: they are not ISO 4217's (ICU gives HUF and IDR 0 decimals
// where ISO 4217 gives 2) and differ between ICU versions and browsers, so
// the same typed "100" would deposit 100 minor units in one browser and
// 10000 in another.

/**
 * exponents are the ISO 4217 minor-unit exponents of exactly the currencies
 * the wallet service accepts (the `in` list of DepositRequest.currency and
 * WithdrawRequest.currency in schemas/authms/wallet/v1/wallet.proto). The
 * server keeps no table of its own: it stores integer minor units as the
 * proto defines them ("cents for USD"), that is ISO 4217's minor unit, so
 * this table is the one place that decides how many of them a typed unit
 * is. test/money.test.mjs checks it against the proto's list.
 */
const exponents: Readonly<Record<string, number>> = {
  AUD: 2, BRL: 2, CAD: 2, CHF: 2, CNY: 2, CZK: 2, DKK: 2, EUR: 2, GBP: 2, HKD: 2, HUF: 2, IDR: 2, INR: 2,
  JPY: 0, KRW: 0, MXN: 2, NOK: 2, NZD: 2, PLN: 2, SEK: 2, SGD: 2, THB: 2, TRY: 2, TWD: 2, USD: 2, ZAR: 2,
};

/** currencies are those the wallet service accepts (DepositRequest.currency), sorted. */
export const currencies: string[] = Object.keys(exponents).sort();

/** minorDigits is the currency's ISO 4217 exponent, or undefined for one the wallet does not accept. */
export function minorDigits(currency: string): number | undefined {
  return Object.hasOwn(exponents, currency) ? exponents[currency] : undefined;
}

/**
 * formatMoney renders minor units as an amount of the currency, in locale
 * (the browser's when undefined). A currency outside the table, which the
 * server never answers with, is shown as its minor units rather than
 * guessed at.
 */
export function formatMoney(minor: bigint, currency: string, locale?: string): string {
  const d = minorDigits(currency);
  if (d === undefined) return `${minor} ${currency} (minor units)`;
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  const unit = 10n ** BigInt(d);
  const whole = abs / unit;
  const frac = (abs % unit).toString().padStart(d, "0");
  const fmt = new Intl.NumberFormat(locale, { style: "currency", currency, minimumFractionDigits: d, maximumFractionDigits: d });
  // Intl formats the whole part from a bigint exactly; the fraction is
  // spliced in so no amount goes through a float.
  const parts = fmt.formatToParts(whole);
  return (neg ? "-" : "") + parts.map((p) => (p.type === "fraction" ? frac : p.value)).join("");
}

/**
 * parseMoney reads a decimal amount typed by a person ("12.50", "12,50")
 * into minor units; it returns an error text for anything else, for more
 * decimals than the currency has, and for a currency the wallet does not
 * accept.
 */
export function parseMoney(text: string, currency: string): bigint | string {
  const d = minorDigits(currency);
  if (d === undefined) return `The wallet does not accept ${currency}.`;
  const t = text.trim().replace(",", ".");
  const m = /^(\d{1,15})(?:\.(\d+))?$/.exec(t);
  if (!m) return "Enter an amount such as 12.50.";
  const frac = m[2] ?? "";
  if (frac.length > d) return d === 0 ? `${currency} has no minor units.` : `At most ${d} decimals for ${currency}.`;
  const minor = BigInt(m[1]) * 10n ** BigInt(d) + BigInt(frac.padEnd(d, "0") || "0");
  if (minor <= 0n) return "Enter an amount greater than zero.";
  return minor;
}
