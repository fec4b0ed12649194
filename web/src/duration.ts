// Waits said to people: a Retry-After of 767 seconds reads "13 minutes",
// not "767 seconds". duration.ts has no imports so its unit test can load
// it without a build step.

/**
 * humanWait says a wait of the given seconds in the largest unit that
 * keeps it readable: seconds under a minute, minutes under an hour, then
 * hours and minutes. It rounds up, never down, so a person who waits as
 * long as it says is not refused again.
 */
export function humanWait(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return plural(s, "second");
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return plural(minutes, "minute");
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${plural(hours, "hour")} ${plural(rest, "minute")}` : plural(hours, "hour");
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}
