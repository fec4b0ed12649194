// Turning API errors into sentences a person can act on. Connect errors
// carry a code, the server's message and details; authms attaches a
// buf.validate.Violations detail to every INVALID_ARGUMENT about a field
// (declarative rules and the services' own checks alike) and a Retry-After
// header when a call is throttled.

import { Code, ConnectError } from "@connectrpc/connect";
import { ViolationsSchema } from "./gen/buf/validate/validate_pb";
import { humanWait } from "./duration";

/** FieldProblem is one field violation: the request field's path and what is wrong with it. */
export interface FieldProblem {
  field: string;
  message: string;
  /** rule is the violated rule's id (string.pattern), empty for a check of the console's own. */
  rule?: string;
}

/** Problem is an error described for people. */
export interface Problem {
  message: string;
  fields: FieldProblem[];
  code?: Code;
}

const sentences: Partial<Record<Code, string>> = {
  [Code.Canceled]: "The request was cancelled.",
  [Code.Unknown]: "Something went wrong.",
  [Code.InvalidArgument]: "Please correct the highlighted fields.",
  [Code.DeadlineExceeded]: "The server took too long to answer. Try again.",
  [Code.NotFound]: "Not found.",
  [Code.AlreadyExists]: "That already exists.",
  [Code.PermissionDenied]: "You are not allowed to do this.",
  [Code.ResourceExhausted]: "Too many attempts.",
  [Code.FailedPrecondition]: "This cannot be done in the current state.",
  [Code.Aborted]: "Someone else changed this at the same time. Reload and try again.",
  [Code.OutOfRange]: "A value is out of range.",
  [Code.Unimplemented]: "This server does not offer this feature yet.",
  [Code.Internal]: "The server failed. Try again later.",
  [Code.Unavailable]: "The service is unavailable right now. Try again in a moment.",
  [Code.DataLoss]: "The server lost data.",
  [Code.Unauthenticated]: "You are not signed in, or your session ended. Log in again.",
};

// protovalidate's own messages for some rules quote the rule (a regular
// expression); these say the same to a person. A form whose field has a
// known format says it instead of "Not in the expected format." (see
// FieldOptions.format).
const ruleSentences: Record<string, string> = {
  "string.pattern": "Not in the expected format.",
  "string.uuid": "Must be an id in UUID form, such as 01a23ee0-3589-793f-a1fa-1b69103d882c.",
  "string.in": "Not one of the allowed values.",
  required: "Required.",
};

const selfSpeaking = new Set([Code.Unauthenticated, Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition, Code.InvalidArgument, Code.OutOfRange]);

/** describe returns what went wrong, for a status line and the form's fields. */
export function describe(err: unknown): Problem {
  const ce = ConnectError.from(err);
  const fields: FieldProblem[] = [];
  for (const v of ce.findDetails(ViolationsSchema).flatMap((d) => d.violations)) {
    const path = v.field?.elements.map((e) => e.fieldName).join(".") ?? "";
    fields.push({ field: path, message: ruleSentences[v.ruleId] ?? (v.message || v.ruleId), rule: v.ruleId });
  }
  const raw = ce.rawMessage.trim();
  // A refusal that says when to try again is a throttle or a lockout
  // (risk's answer to too many logins, PERMISSION_DENIED for a locked
  // account), not a missing permission: it is said as such, with the wait
  // in minutes or hours rather than raw seconds. The server's message adds
  // only "retry later".
  if (ce.code === Code.ResourceExhausted || ce.code === Code.PermissionDenied) {
    const after = Number(ce.metadata.get("retry-after"));
    if (after > 0) return { message: `Too many attempts. Try again in ${humanWait(after)}.`, fields, code: ce.code };
  }
  let message = sentences[ce.code] ?? "Something went wrong.";
  // The server's own message says what exactly failed (it never carries
  // internals); for field errors the list of fields says it better. For
  // codes whose server messages are complete sentences of their own
  // ("invalid email or password", "tenant not found") the code's sentence
  // would only be noise. A message that only names the code ("permission
  // denied") adds nothing.
  const bare = raw.toLowerCase().replace(/[\s_]/g, "") === Code[ce.code]?.toLowerCase();
  if (raw && !bare && fields.length === 0 && ce.code !== Code.Internal) {
    const own = capitalize(raw) + (/[.!?]$/.test(raw) ? "" : ".");
    if (ce.code === Code.Unknown && /fetch|network/i.test(raw)) message = "Cannot reach the server. Check your connection and try again.";
    else if (selfSpeaking.has(ce.code)) message = own;
    else message = `${message} ${own}`;
  }
  return { message, fields, code: ce.code };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
