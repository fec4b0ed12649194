// Money in the console: the API counts integer minor units (bigint); people
// type and read decimal amounts. The number of minor digits per currency is
// the one Intl knows (2 for EUR, 0 for JPY), used both ways so what a
// person types is what they later read.

/** currencies are those the wallet service accepts (DepositRequest.currency). */
export const currencies = [
  "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR", "INR",
  "JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "THB", "TRY", "TWD", "USD", "ZAR",
];

function digits(currency: string): number {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** formatMoney renders minor units as an amount of the currency. */
export function formatMoney(minor: bigint, currency: string): string {
  const d = digits(currency);
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  const unit = 10n ** BigInt(d);
  const whole = abs / unit;
  const frac = (abs % unit).toString().padStart(d, "0");
  const fmt = new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: d, maximumFractionDigits: d });
  // Intl formats the whole part from a bigint exactly; the fraction is
  // spliced in so no amount goes through a float.
  const parts = fmt.formatToParts(whole);
  return (neg ? "-" : "") + parts.map((p) => (p.type === "fraction" ? frac : p.value)).join("");
}

/**
 * parseMoney reads a decimal amount typed by a person ("12.50", "12,50")
 * into minor units; it returns an error text for anything else, and for
 * more decimals than the currency has.
 */
export function parseMoney(text: string, currency: string): bigint | string {
  const d = digits(currency);
  const t = text.trim().replace(",", ".");
  const m = /^(\d{1,15})(?:\.(\d+))?$/.exec(t);
  if (!m) return "Enter an amount such as 12.50.";
  const frac = m[2] ?? "";
  if (frac.length > d) return d === 0 ? `${currency} has no minor units.` : `At most ${d} decimals for ${currency}.`;
  const minor = BigInt(m[1]) * 10n ** BigInt(d) + BigInt(frac.padEnd(d, "0") || "0");
  if (minor <= 0n) return "Enter an amount greater than zero.";
  return minor;
}
