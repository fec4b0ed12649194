// A wallet: balances, the transaction history, withdrawals for its owner
// and deposits for the tenant's admins (Deposit is an admin call). The
// same view serves the user's own wallet page and the admin Users page's
// view of a user's wallet.

import { h, formatTime, replace, table } from "../dom";
import { busy, clearProblems, field, say, select, showProblem, status, values } from "../forms";
import { wallets } from "../api";
import { auth } from "../auth";
import { describe } from "../errors";
import { currencies, formatMoney, parseMoney } from "../money";
import { TransactionKind, type Wallet } from "../gen/authms/wallet/v1/wallet_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { signedIn, type Page } from "./page";

export interface WalletViewOptions {
  tenantId: string;
  userId: string;
  /** label names whose wallet it is, for headings and regions. */
  label: string;
  deposit: boolean;
  withdraw: boolean;
  signal?: AbortSignal;
}

/** walletView renders a wallet and keeps it current after each of its own writes. */
export function walletView(o: WalletViewOptions): HTMLElement {
  const root = h("div", { class: "wallet" });
  const balances = h("div", { class: "balances", "aria-live": "polite" });
  const history = h("div", { class: "history" });
  const pageStatus = status();
  const ids = { tenantId: o.tenantId, userId: o.userId };

  const load = async () => {
    try {
      const [w, tx] = await Promise.all([
        wallets.getWallet(ids, { signal: o.signal }),
        wallets.listTransactions({ ...ids, pageSize: 50 }, { signal: o.signal }),
      ]);
      showBalances(w.wallet);
      replace(
        history,
        table(
          `Transactions of ${o.label}, newest first`,
          ["Time", "Kind", "Amount", "Balance after"],
          tx.transactions.map((t) => [
            formatTime(t.createTime ? timestampDate(t.createTime) : undefined),
            t.kind === TransactionKind.DEPOSIT ? "Deposit" : t.kind === TransactionKind.WITHDRAWAL ? "Withdrawal" : "Other",
            h("span", { class: t.kind === TransactionKind.WITHDRAWAL ? "neg" : "pos" }, `${t.kind === TransactionKind.WITHDRAWAL ? "−" : "+"}${formatMoney(t.amount, t.currency)}`),
            formatMoney(t.balanceAfter, t.currency),
          ]),
        ),
      );
    } catch (err) {
      if (!o.signal?.aborted) say(pageStatus, describe(err).message, "error");
    }
  };

  const showBalances = (w: Wallet | undefined) => {
    const list = w?.balances.filter((b) => b.amount !== 0n) ?? [];
    replace(
      balances,
      h("h3", null, "Balance"),
      list.length === 0
        ? h("p", { class: "balance", "data-testid": "balance" }, "No money yet.")
        : h("ul", { class: "balance-list", "data-testid": "balance" }, list.map((b) => h("li", { class: "balance" }, formatMoney(b.amount, b.currency)))),
    );
  };

  const moneyForm = (kind: "deposit" | "withdraw") => {
    const st = status();
    const label = kind === "deposit" ? "Deposit" : "Withdraw";
    const form = h(
      "form",
      { class: "card money", novalidate: true, "aria-label": `${label} (${o.label})` },
      h("h3", null, label),
      h(
        "div",
        { class: "row" },
        select("currency", "Currency", currencies, "EUR"),
        field({ name: "amount", label: "Amount", required: true, inputmode: "decimal", placeholder: "10.00", autocomplete: "off" }),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", class: kind === "deposit" ? "primary" : "" }, label)),
      st,
    );
    // One idempotency key per intended transaction: a retry of the same
    // form after a lost answer reuses it (one effect), a changed form or a
    // success starts a new one.
    let key = crypto.randomUUID();
    form.addEventListener("input", () => (key = crypto.randomUUID()));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = values(form);
      clearProblems(form);
      const amount = parseMoney(v.amount, v.currency);
      if (typeof amount === "string") {
        const err = form.querySelector<HTMLElement>('[data-field="amount"] .field-error')!;
        err.textContent = amount;
        err.hidden = false;
        form.querySelector("input[name=amount]")!.setAttribute("aria-invalid", "true");
        say(st, "Please correct the amount.", "error");
        return;
      }
      say(st, kind === "deposit" ? "Depositing…" : "Withdrawing…");
      void busy(form, async () => {
        try {
          const req = { ...ids, currency: v.currency, amount, idempotencyKey: key };
          const res = kind === "deposit" ? await wallets.deposit(req) : await wallets.withdraw(req);
          key = crypto.randomUUID();
          (form.querySelector("input[name=amount]") as HTMLInputElement).value = "";
          say(st, `${kind === "deposit" ? "Deposited" : "Withdrew"} ${formatMoney(amount, v.currency)}.`, "ok");
          showBalances(res.wallet);
          await load();
        } catch (err) {
          showProblem(form, st, err);
        }
      });
    });
    return form;
  };

  root.append(
    h("div", { class: "card" }, balances, pageStatus),
    h("div", { class: "forms" }, o.deposit ? moneyForm("deposit") : null, o.withdraw ? moneyForm("withdraw") : null),
    history,
  );
  void load();
  return root;
}

export const walletPage: Page = (ctx) => {
  const who = signedIn(ctx);
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Wallet"),
    walletView({ ...who, label: "your wallet", deposit: auth.isAdmin(), withdraw: true, signal: ctx.signal }),
  );
};
