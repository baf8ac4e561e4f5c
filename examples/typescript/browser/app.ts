// The page's script: a Recommend over Connect from the browser, each shown offer recorded as an
// impression, and a click recorded when the reader picks one. The page calls its own origin; serve.ts
// passes the two services' calls on to the decisioning service with the tenant and key added, so no key
// is ever in the page.

import { ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createKaireonClient, errorDetailOf, type Recommendation } from "@kaireon/client";

const kaireon = createKaireonClient({ transport: createConnectTransport({ baseUrl: location.origin }) });
const form = document.querySelector("#ask") as HTMLFormElement;
const status = document.querySelector("#status") as HTMLElement;
const list = document.querySelector("#offers") as HTMLOListElement;

function say(state: string, text: string): void {
  status.dataset.state = state;
  status.textContent = text;
}

async function respond(customerId: string, r: Recommendation, outcomeType: string): Promise<string> {
  const recorded = await kaireon.respond.respond({
    customerId,
    offerId: r.offerId,
    channelId: r.channelId,
    creativeId: r.creativeId,
    outcomeType,
  });
  return recorded.id;
}

async function recommend(): Promise<void> {
  const data = new FormData(form);
  const customerId = String(data.get("customerId"));
  const channelId = String(data.get("channelId"));
  list.replaceChildren();
  say("loading", "Deciding…");
  try {
    const answer = await kaireon.recommend.recommend({ customerId, channelId, maxOffers: 3 }, { timeoutMs: 5000 });
    for (const r of answer.recommendations) {
      const item = document.createElement("li");
      item.dataset.offerId = r.offerId;
      const pick = document.createElement("button");
      pick.textContent = `${r.offerName} (${r.score.toFixed(2)})`;
      pick.addEventListener("click", async () => {
        item.dataset.click = await respond(customerId, r, "click");
      });
      item.append(pick);
      list.append(item);
    }
    const shown = await Promise.all(answer.recommendations.map((r) => respond(customerId, r, "impression")));
    list.querySelectorAll("li").forEach((item, i) => {
      item.dataset.impression = shown[i] ?? "";
    });
    say("done", `${answer.recommendations.length} offers from ${answer.decisionFlowId}, impressions recorded`);
  } catch (err) {
    const detail = err instanceof ConnectError ? errorDetailOf(err) : undefined;
    const fields = detail?.details.map((v) => `${v.field}: ${v.message}`).join("; ");
    say("error", detail ? `${detail.code}${fields ? ` (${fields})` : ""}` : String(err));
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  void recommend();
});
void recommend();
