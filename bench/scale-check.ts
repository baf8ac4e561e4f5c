// Checks and measurements of the scale benchmark (bench/scale.sh), against the data of scale-generate.ts.
//
//   bun bench/scale-check.ts check    <base-url> <database-url>   Recommend answers correctly (needs KAIREON_API_KEY)
//   bun bench/scale-check.ts explain  <database-url>              plans of the profile lookup and the history read
//   bun bench/scale-check.ts size     <database-url>              tenant scale's profiles, offers and interactions
//   bun bench/scale-check.ts counters <database-url>              scans so far, one line: profile index scans,
//                                                                 profile seq scans, rows they read, history index
//                                                                 scans, seq scans of non-empty partitions, rows they read
//
// `check` exits 1 when a core check fails (status, ranking, maxOffers, personalization, qualification,
// trace) and 3 when only a contact-policy check fails, so the caller can report the latter and go on.
// It writes a few interactions through Respond (the before/after contact-policy check) to real customers.

import postgres from "postgres";

const TENANT = "scale";
const POLICY_REASONS = ["frequency_cap", "cooldown", "outcome_suppression", "opt_out", "history unavailable"];

const [cmd, ...rest] = process.argv.slice(2);

type Json = Record<string, unknown>;
interface Rec {
  offerId: string;
  offerName: string;
  categoryId: string;
  rank: number;
  score?: number;
  channelId: string;
  creativeId: string;
  content: Record<string, unknown>;
  personalization?: Record<string, unknown>;
}
interface RecommendAnswer {
  recommendations?: Rec[];
  traceId?: string;
}

function connect(url: string): postgres.Sql {
  return postgres(url, { onnotice: () => {}, max: 1, connect_timeout: 10, types: { bigint: postgres.BigInt } });
}

const out = (line: string) => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------------
// check

let coreFailures = 0;
let policyFailures = 0;
function result(kind: "core" | "policy", ok: boolean, what: string, detail = ""): boolean {
  if (!ok) {
    if (kind === "core") coreFailures++;
    else policyFailures++;
  }
  out(`  ${ok ? "PASS" : "FAIL"}  ${what}${detail ? `\n          ${detail.replaceAll("\n", "\n          ")}` : ""}`);
  return ok;
}

async function check(base: string, dbUrl: string): Promise<number> {
  const key = process.env.KAIREON_API_KEY;
  if (!key) throw new Error("KAIREON_API_KEY is not set");
  const headers = { "content-type": "application/json", "x-tenant-id": TENANT, "x-api-key": key };
  const post = async (path: string, body: Json): Promise<{ status: number; json: Json; ms: number }> => {
    const t = performance.now();
    const res = await fetch(`${base}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
    const text = await res.text();
    const ms = performance.now() - t;
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      json = { raw: text.slice(0, 300) };
    }
    return { status: res.status, json, ms };
  };
  const recommend = (body: Json) => post("/api/v1/recommend", body);
  const recs = (j: Json) => (j as RecommendAnswer).recommendations ?? [];
  const ids = (j: Json) => recs(j).map((r) => r.offerId);

  /** Every filtered entry of a trace ("off_1 (reason)"), waiting for the trace to be written. */
  const traceFiltered = async (traceId: string | undefined): Promise<{ filtered: string[]; stages: Json[] } | null> => {
    if (!traceId) return null;
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${base}/api/v1/decision-traces/${traceId}`, { headers });
      if (res.status === 200) {
        const trace = (await res.json()) as { stages?: Json[] };
        const stages = trace.stages ?? [];
        return { filtered: stages.flatMap((s) => (s.filtered as string[] | undefined) ?? []), stages };
      }
      await Bun.sleep(100);
    }
    return null;
  };
  const reasonOf = (filtered: string[], offerId: string) => {
    const entry = filtered.find((f) => f.startsWith(`${offerId} (`));
    return entry ? entry.slice(offerId.length + 2, -1) : null;
  };
  const isPolicyReason = (reason: string | null) => reason !== null && POLICY_REASONS.some((p) => reason.startsWith(p));

  const sql = connect(dbUrl);
  try {
    const [{ n: profileCount } = { n: 0n }] = await sql<
      { n: bigint }[]
    >`select count(*) as n from customer_profiles where tenant_id = ${TENANT}`;
    const [{ n: offerCount } = { n: 0n }] = await sql<{ n: bigint }[]>`select count(*) as n from offers where tenant_id = ${TENANT}`;
    const offers = new Map(
      (
        await sql<{ id: string; name: string; status: string; ends_at: Date | null; qualification: Json; base_rate: number | null }[]>`
          select o.id, o.name, o.status, o.ends_at, o.qualification,
                 coalesce((o.fields->>'base_rate')::float8, (c.fields->>'base_rate')::float8) as base_rate
            from offers o join categories c on c.tenant_id = o.tenant_id and c.id = o.category_id
           where o.tenant_id = ${TENANT}`
      ).map((o) => [o.id, o]),
    );
    const profileOf = async (customerId: string) => {
      const [p] = await sql<{ attributes: Json; segments: string[] }[]>`
        select attributes, segments from customer_profiles where tenant_id = ${TENANT} and customer_id = ${customerId}`;
      return p;
    };
    const randomCustomer = () => `cust_${String(1 + Math.floor(Math.random() * Number(profileCount))).padStart(7, "0")}`;

    /** What a recommendation must satisfy for this customer: qualification, creative, rendering, rate. */
    const verifyOffers = (what: string, list: Rec[], profile: { attributes: Json; segments: string[] }, channel: string) => {
      const problems: string[] = [];
      const a = profile.attributes;
      const loyalty = Number(a.loyalty_score);
      for (const r of list) {
        const o = offers.get(r.offerId);
        if (!o) {
          problems.push(`${r.offerId}: not in the catalog`);
          continue;
        }
        if (r.offerName !== o.name) problems.push(`${r.offerId}: offerName ${r.offerName}`);
        if (o.status !== "active" || (o.ends_at && o.ends_at.getTime() <= Date.now())) problems.push(`${r.offerId}: inactive or expired`);
        const q = o.qualification as { segment?: string; condition?: string };
        if (q.segment && !profile.segments.includes(q.segment)) problems.push(`${r.offerId}: needs segment ${q.segment}`);
        if (q.condition?.includes("credit_score") && !(Number(a.credit_score) >= 650))
          problems.push(`${r.offerId}: credit_score ${a.credit_score}`);
        if (q.condition?.includes("customer.age") && !(Number(a.age) < 30)) problems.push(`${r.offerId}: age ${a.age}`);
        const suffix = channel === "ch_email" ? "_email" : "_web";
        if (r.creativeId !== `cr_${r.offerId}${suffix}`) problems.push(`${r.offerId}: creative ${r.creativeId}`);
        const rate = o.base_rate === null ? null : Math.round((o.base_rate - (loyalty >= 80 ? 2.5 : loyalty >= 50 ? 1.25 : 0)) * 100) / 100;
        const got = r.personalization?.personalized_rate;
        if (rate === null || typeof got !== "number" || Math.abs(got - rate) > 0.001) {
          problems.push(`${r.offerId}: personalized_rate ${got}, expected ${rate} (base ${o.base_rate}, loyalty ${loyalty})`);
        }
        const text = Object.values(r.content).join(" | ");
        if (text.includes("{{")) problems.push(`${r.offerId}: unrendered template in ${text}`);
        if (!text.includes(String(a.first_name))) problems.push(`${r.offerId}: content not addressed to ${a.first_name}: ${text}`);
        if (!text.includes(`${String(got)}%`)) problems.push(`${r.offerId}: content without the rate ${got}%: ${text}`);
        if (r.content.headline !== o.name) problems.push(`${r.offerId}: headline ${String(r.content.headline)}`);
      }
      return result("core", problems.length === 0, what, problems.join("\n"));
    };
    const verifyRanking = (what: string, list: Rec[], maxOffers: number, want: number) => {
      const problems: string[] = [];
      if (list.length !== want) problems.push(`${list.length} offers, expected ${want}`);
      if (list.length > maxOffers) problems.push(`more than maxOffers ${maxOffers}`);
      list.forEach((r, i) => {
        if (r.rank !== i + 1) problems.push(`${r.offerId} has rank ${r.rank} at position ${i + 1}`);
        const prev = list[i - 1];
        if (prev && (prev.score ?? 0) < (r.score ?? 0))
          problems.push(`${r.offerId} scores ${r.score} above ${prev.offerId} (${prev.score})`);
      });
      if (new Set(list.map((r) => r.offerId)).size !== list.length) problems.push("an offer appears twice");
      return result("core", problems.length === 0, what, problems.join("\n"));
    };

    out(`Correctness (tenant ${TENANT}: ${profileCount} profiles, ${offerCount} offers)`);

    // 1. A real customer on the web: ranked, personalized, qualified offers; maxOffers respected.
    const customer = randomCustomer();
    const profile = await profileOf(customer);
    if (!profile) {
      result("core", false, `profile ${customer} exists`);
      return 1;
    }
    const web = await recommend({ customerId: customer, channelId: "ch_web", maxOffers: 5, trace: true });
    const webRecs = recs(web.json);
    result("core", web.status === 200, `Recommend ${customer} on ch_web, maxOffers 5: HTTP ${web.status} in ${web.ms.toFixed(1)} ms`);
    out(
      `          ${customer}: ${JSON.stringify(profile.attributes)} ${JSON.stringify(profile.segments)}\n` +
        webRecs
          .map((r) => `          #${r.rank} ${r.offerId} score ${r.score} rate ${r.personalization?.personalized_rate} "${r.content.body}"`)
          .join("\n"),
    );
    verifyRanking("5 offers, ranks 1..5, scores non-increasing, no duplicates", webRecs, 5, 5);
    verifyOffers(
      "every offer qualifies, web creative, content rendered for the customer, personalized_rate right",
      webRecs,
      profile,
      "ch_web",
    );
    const three = await recommend({ customerId: customer, channelId: "ch_web", maxOffers: 3 });
    verifyRanking("maxOffers 3: exactly 3", recs(three.json), 3, 3);
    result(
      "core",
      JSON.stringify(ids(three.json)) === JSON.stringify(ids(web.json).slice(0, 3)),
      "maxOffers 3 gives the top 3 of maxOffers 5",
      `${ids(three.json).join(", ")} vs ${ids(web.json).join(", ")}`,
    );
    const one = await recommend({ customerId: customer, channelId: "ch_web", maxOffers: 1 });
    verifyRanking("maxOffers 1: exactly 1", recs(one.json), 1, 1);

    // 2. The trace explains the filter stage.
    const trace = await traceFiltered((web.json as RecommendAnswer).traceId);
    if (!trace) {
      result("core", false, "decision trace readable", `traceId ${(web.json as RecommendAnswer).traceId}`);
    } else {
      const reasons = new Map<string, number>();
      for (const f of trace.filtered) {
        const r = (f.match(/\(([a-z_ ]+)/)?.[1] ?? f).trim();
        reasons.set(r, (reasons.get(r) ?? 0) + 1);
      }
      const filter = trace.stages.find((s) => s.name === "filter");
      const summary = [...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`);
      // What the qualification rules must filter for this customer, worked out from the catalog in the
      // engine's order (schedule, then segment, then condition); every offer has a web creative.
      const want = new Map<string, number>();
      const a = profile.attributes;
      for (const o of offers.values()) {
        const q = o.qualification as { segment?: string; condition?: string };
        let reason: string | null = null;
        if (o.status !== "active") reason = "inactive";
        else if (o.ends_at && o.ends_at.getTime() <= Date.now()) reason = "expired";
        else if (q.segment && !profile.segments.includes(q.segment)) reason = "segment_required";
        else if (q.condition?.includes("credit_score") && !(Number(a.credit_score) >= 650)) reason = "condition_failed";
        else if (q.condition?.includes("customer.age") && !(Number(a.age) < 30)) reason = "condition_failed";
        if (reason) want.set(reason, (want.get(reason) ?? 0) + 1);
      }
      const mismatches = [...want]
        .filter(([r, n]) => (reasons.get(r) ?? 0) !== n)
        .map(([r, n]) => `${r}: ${reasons.get(r) ?? 0}, expected ${n}`);
      result(
        "core",
        mismatches.length === 0 && Number(filter?.candidatesIn) === Number(offerCount),
        `trace: filter stage saw all ${offerCount} offers, kept ${filter?.candidatesOut}; qualification reasons as the catalog implies`,
        `${summary.join(", ")}${mismatches.length ? `\nMISMATCH ${mismatches.join("; ")}` : ""}\n` +
          `stages: ${trace.stages.map((s) => `${s.name} ${s.duration} ms`).join(", ")}`,
      );
    }

    // 3. Email, placement hero_offer: only offers with an email creative.
    const emailCustomer = randomCustomer();
    const emailProfile = await profileOf(emailCustomer);
    const email = await recommend({ customerId: emailCustomer, channelId: "ch_email", placement: "hero_offer", maxOffers: 5 });
    result(
      "core",
      email.status === 200,
      `Recommend ${emailCustomer} on ch_email/hero_offer: HTTP ${email.status} in ${email.ms.toFixed(1)} ms`,
    );
    out(
      recs(email.json)
        .map((r) => `          #${r.rank} ${r.offerId} "${r.content.subject}"`)
        .join("\n"),
    );
    verifyRanking("email: 5 offers ranked", recs(email.json), 5, 5);
    if (emailProfile)
      verifyOffers(
        "email: every offer qualifies, email creative, subject rendered, personalized_rate right",
        recs(email.json),
        emailProfile,
        "ch_email",
      );

    // 4. Contact policies against the generated history.
    out("Contact policies (flow df_scale: frequency_cap offer 3/week, outcome_suppression 30 days)");
    const [capped] = await sql<{ customer_id: string; offer_id: string; n: bigint }[]>`
      select i.customer_id, i.offer_id, count(*) as n
        from interactions i join offers o on o.tenant_id = i.tenant_id and o.id = i.offer_id
       where i.tenant_id = ${TENANT} and i.outcome_type = 'impression' and i.recorded_at > now() - interval '7 days'
         and o.qualification = '{}'::jsonb and o.status = 'active' and o.ends_at is null and o.name like 'Flagship%'
       group by 1, 2 having count(*) >= 3
       order by count(*) desc, 1 limit 1`;
    if (!capped) {
      result("policy", false, "a customer with >= 3 impressions of an offer in the last week exists (SQL)");
    } else {
      const r = await recommend({ customerId: capped.customer_id, channelId: "ch_web", maxOffers: 5, trace: true });
      const t = await traceFiltered((r.json as RecommendAnswer).traceId);
      const reason = t ? reasonOf(t.filtered, capped.offer_id) : null;
      result(
        "policy",
        r.status === 200 && !ids(r.json).includes(capped.offer_id) && isPolicyReason(reason),
        `frequency cap, history found by SQL: ${capped.customer_id} had ${capped.n} impressions of ${capped.offer_id} in the last 7 days`,
        `recommended: ${ids(r.json).join(", ")}; trace reason for ${capped.offer_id}: ${reason ?? "(not filtered)"}`,
      );
    }
    const [dismissed] = await sql<{ customer_id: string; offer_id: string; at: Date }[]>`
      select i.customer_id, i.offer_id, max(i.recorded_at) as at
        from interactions i join offers o on o.tenant_id = i.tenant_id and o.id = i.offer_id
       where i.tenant_id = ${TENANT} and i.outcome_type = 'dismiss' and i.recorded_at > now() - interval '29 days'
         and o.qualification = '{}'::jsonb and o.status = 'active' and o.ends_at is null and o.name like 'Flagship%'
       group by 1, 2 order by 1 limit 1`;
    if (!dismissed) {
      result("policy", false, "a customer who dismissed an offer in the last 30 days exists (SQL)");
    } else {
      const r = await recommend({ customerId: dismissed.customer_id, channelId: "ch_web", maxOffers: 5, trace: true });
      const t = await traceFiltered((r.json as RecommendAnswer).traceId);
      const reason = t ? reasonOf(t.filtered, dismissed.offer_id) : null;
      result(
        "policy",
        r.status === 200 && !ids(r.json).includes(dismissed.offer_id) && isPolicyReason(reason),
        `outcome suppression, history found by SQL: ${dismissed.customer_id} dismissed ${dismissed.offer_id} on ${dismissed.at.toISOString()}`,
        `recommended: ${ids(r.json).join(", ")}; trace reason for ${dismissed.offer_id}: ${reason ?? "(not filtered)"}`,
      );
    }

    // Before and after: the customer's top offer, shown 3 times through Respond, must then disappear.
    const subject = randomCustomer();
    const before = await recommend({ customerId: subject, channelId: "ch_web", maxOffers: 5 });
    const top = recs(before.json)[0];
    if (!top) {
      result("policy", false, `before/after: ${subject} gets an offer to start with`);
    } else {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await post("/api/v1/respond", {
          customerId: subject,
          offerId: top.offerId,
          channelId: "ch_web",
          creativeId: top.creativeId,
          outcomeType: "impression",
        });
        statuses.push(r.status);
      }
      const t0 = performance.now();
      let after = await recommend({ customerId: subject, channelId: "ch_web", maxOffers: 5, trace: true });
      while (ids(after.json).includes(top.offerId) && performance.now() - t0 < 5000) {
        await Bun.sleep(200);
        after = await recommend({ customerId: subject, channelId: "ch_web", maxOffers: 5, trace: true });
      }
      const t = await traceFiltered((after.json as RecommendAnswer).traceId);
      const reason = t ? reasonOf(t.filtered, top.offerId) : null;
      result(
        "policy",
        statuses.every((s) => s === 200) && !ids(after.json).includes(top.offerId) && isPolicyReason(reason),
        `frequency cap, before/after: ${subject}'s top offer ${top.offerId}, 3 impressions through Respond (HTTP ${statuses.join(",")})`,
        `before: ${ids(before.json).join(", ")}\nafter (${Math.round(performance.now() - t0)} ms later): ${ids(after.json).join(", ")}; ` +
          `trace reason for ${top.offerId}: ${reason ?? "(not filtered)"}`,
      );
      // Then a dismiss of the new top offer suppresses it.
      const next = recs(after.json)[0];
      if (next) {
        const d = await post("/api/v1/respond", {
          customerId: subject,
          offerId: next.offerId,
          channelId: "ch_web",
          creativeId: next.creativeId,
          outcomeType: "dismiss",
        });
        const t1 = performance.now();
        let again = await recommend({ customerId: subject, channelId: "ch_web", maxOffers: 5, trace: true });
        while (ids(again.json).includes(next.offerId) && performance.now() - t1 < 5000) {
          await Bun.sleep(200);
          again = await recommend({ customerId: subject, channelId: "ch_web", maxOffers: 5, trace: true });
        }
        const t2 = await traceFiltered((again.json as RecommendAnswer).traceId);
        const reason2 = t2 ? reasonOf(t2.filtered, next.offerId) : null;
        result(
          "policy",
          d.status === 200 && !ids(again.json).includes(next.offerId) && isPolicyReason(reason2),
          `outcome suppression, before/after: dismiss of ${next.offerId} through Respond (HTTP ${d.status})`,
          `after: ${ids(again.json).join(", ")}; trace reason for ${next.offerId}: ${reason2 ?? "(not filtered)"}`,
        );
      }
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  out(`${coreFailures} core and ${policyFailures} contact-policy check(s) failed`);
  return coreFailures > 0 ? 1 : policyFailures > 0 ? 3 : 0;
}

// ---------------------------------------------------------------------------------------------------------
// explain

// The service's statements, as in src/store/profiles.ts and src/store/history.ts.
export const PROFILE_SQL = "select attributes, segments from customer_profiles where tenant_id = $1 and customer_id = $2";
export const HISTORY_SQL = `select offer_id, channel_id, outcome_type, recorded_at
  from interactions
 where tenant_id = $1 and customer_id = $2 and recorded_at > $3 and outcome_type = any($4::text[])
 order by recorded_at desc
 limit 5000`;

async function explain(dbUrl: string): Promise<number> {
  const sql = connect(dbUrl);
  let bad = 0;
  try {
    // The customer with the most interactions in the last 30 days among a sample: the worst case for the read.
    const [busy] = await sql<{ customer_id: string; n: bigint }[]>`
      select customer_id, count(*) as n from interactions
       where tenant_id = ${TENANT} and recorded_at > now() - interval '30 days'
         and customer_id in (select customer_id from customer_profiles where tenant_id = ${TENANT} order by random() limit 2000)
       group by 1 order by 2 desc limit 1`;
    const customer = busy?.customer_id ?? "cust_0000001";
    const since = new Date(Date.now() - 30 * 86_400_000);
    const lit = (v: string) => `'${v.replaceAll("'", "''")}'`;
    const cases: [string, string, string, string, RegExp][] = [
      ["profile lookup (enrich)", PROFILE_SQL, "text, text", [TENANT, customer].map(lit).join(", "), /customer_profiles_pkey/],
      [
        `contact history, last 30 days (${customer}: ${busy?.n ?? "?"} interactions in that range)`,
        HISTORY_SQL,
        "text, text, timestamptz, text[]",
        [TENANT, customer, since.toISOString(), "{dismiss,impression,not_interested}"].map(lit).join(", "),
        /(interactions_customer|tenant_id_customer_id_recorded_at)/,
      ],
    ];
    for (const [name, text, types, args, index] of cases) {
      // The service runs prepared statements: PostgreSQL plans the first five executions with the parameters
      // (custom plans) and may then switch to one generic plan, so both are shown.
      for (const mode of ["force_custom_plan", "force_generic_plan"]) {
        const lines = await sql.begin(async (tx) => {
          await tx.unsafe(`prepare scale_explain(${types}) as ${text}`);
          await tx.unsafe(`set local plan_cache_mode = ${mode}`);
          const rows = await tx.unsafe(`explain (analyze, buffers, costs off) execute scale_explain(${args})`);
          await tx.unsafe("deallocate scale_explain");
          return rows.map((r) => String((r as Json)["QUERY PLAN"]));
        });
        const plan = lines.join("\n");
        // A sequential scan is harmless only on an empty partition (the months ahead, the default one):
        // the read has no upper time bound, so those cannot be pruned.
        const seqScanned = [...plan.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1] as string);
        const sizes = seqScanned.length
          ? await sql<
              { rel: string; bytes: bigint }[]
            >`select rel, pg_relation_size(rel::regclass) as bytes from unnest(${seqScanned}::text[]) rel`
          : [];
        const nonEmpty = sizes.filter((r) => r.bytes > 0n).map((r) => r.rel);
        const usesIndex = index.test(plan) && /Index (Only )?Scan|Bitmap Index Scan/.test(plan);
        const ok = usesIndex && nonEmpty.length === 0;
        if (!ok) bad++;
        const note =
          seqScanned.length === 0
            ? ""
            : nonEmpty.length
              ? `; SEQ SCAN of ${nonEmpty.join(", ")}`
              : `; seq scans only of empty partitions (${seqScanned.join(", ")})`;
        out(`${ok ? "INDEX" : "NOT INDEX-BACKED"}  ${name}, ${mode.replace("force_", "").replace("_plan", "")} plan${note}:`);
        for (const l of lines) out(`    ${l}`);
      }
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  return bad > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------
// counters: scans of the two tables since the statistics were reset, summed over the interaction partitions.

async function counters(dbUrl: string): Promise<number> {
  const sql = connect(dbUrl);
  try {
    // Sequential scans of empty partitions (months ahead, default) cost nothing and are left out.
    const [r] = await sql<{ pidx: bigint; pseq: bigint; pseqtup: bigint; hidx: bigint; hseq: bigint; hseqtup: bigint }[]>`
      with parts as (select relid from pg_partition_tree('interactions') where isleaf and pg_relation_size(relid) > 0),
           customer_idx as (select relid from pg_partition_tree('interactions_customer') where isleaf)
      select (select coalesce(sum(idx_scan), 0) from pg_stat_user_indexes where indexrelname = 'customer_profiles_pkey') as pidx,
             (select coalesce(sum(seq_scan), 0) from pg_stat_user_tables where relname = 'customer_profiles') as pseq,
             (select coalesce(sum(seq_tup_read), 0) from pg_stat_user_tables where relname = 'customer_profiles') as pseqtup,
             (select coalesce(sum(idx_scan), 0) from pg_stat_user_indexes where indexrelid in (select relid from customer_idx)) as hidx,
             (select coalesce(sum(seq_scan), 0) from pg_stat_user_tables where relid in (select relid from parts)) as hseq,
             (select coalesce(sum(seq_tup_read), 0) from pg_stat_user_tables where relid in (select relid from parts)) as hseqtup`;
    out([r?.pidx, r?.pseq, r?.pseqtup, r?.hidx, r?.hseq, r?.hseqtup].map((v) => String(v ?? 0)).join(" "));
  } finally {
    await sql.end({ timeout: 5 });
  }
  return 0;
}

async function size(dbUrl: string): Promise<number> {
  const sql = connect(dbUrl);
  try {
    const [r] = await sql<{ p: bigint; o: bigint; i: bigint }[]>`
      select (select count(*) from customer_profiles where tenant_id = ${TENANT}) as p,
             (select count(*) from offers where tenant_id = ${TENANT}) as o,
             (select count(*) from interactions where tenant_id = ${TENANT}) as i`;
    out(`${r?.p ?? 0} ${r?.o ?? 0} ${r?.i ?? 0}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  return 0;
}

let code = 2;
if (cmd === "size" && rest[0]) code = await size(rest[0]);
else if (cmd === "check" && rest[0] && rest[1]) code = await check(rest[0], rest[1]);
else if (cmd === "explain" && rest[0]) code = await explain(rest[0]);
else if (cmd === "counters" && rest[0]) code = await counters(rest[0]);
else process.stderr.write("usage: bun bench/scale-check.ts check <base-url> <database-url> | explain|counters|size <database-url>\n");
process.exit(code);
