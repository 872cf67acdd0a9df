// A portal written against the types openapi-typescript generates from /openapi.json, calling
// the gateway with openapi-fetch: `cargo xtask clients` generates `schema.d.ts`, type-checks
// this file with tsc (a body, header or answer the document does not allow is a compile error)
// and runs it with GATEWAY_URL and GATEWAY_ADMIN_URL. What a browser portal does, in the same
// order as the Python portal: the catalogue, a form and its materials (材料清单), a lookup with a
// Chinese purpose and clerk, pre-review with problems (a required material missing among them),
// a draft holding the two required materials (the demo's sample PDFs in config/samples, uploaded
// as `application/octet-stream`) and its pre-review, an application from that draft with an
// Idempotency-Key (and its repeat), the case followed to `completed` through its event stream, a
// typed 404 and a typed 422.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

type Schemas = components["schemas"];

const url = process.env.GATEWAY_URL ?? "";
const adminUrl = process.env.GATEWAY_ADMIN_URL ?? "";
const service = "market-regulation.business-licence";
const clerk = { id: "张三", window: "窗口 3", hall: "鼓楼区政务服务中心" };
const purpose = "企业开办受理：核验法定代表人身份";
// What 营业执照设立登记 on its own needs uploaded (股东身份证明 is obtained only by 企业开办's
// identity check); 住所使用证明 may come later.
const required = ["articles-of-association", "shareholder-id"];
const deferrable = "premises-proof";
// The demo's sample PDFs, found from where xtask compiles this file
// (target/clients/typescript/out).
const samples = new URL("../../../../config/samples/", import.meta.url);

// What `fetch` accepts in a header: ASCII. Chinese goes percent-encoded.
const clerkHeaders = {
  "X-Clerk-Id": encodeURIComponent(clerk.id),
  "X-Clerk-Window": encodeURIComponent(clerk.window),
  "X-Clerk-Hall": encodeURIComponent(clerk.hall),
};

const chinese = (text: string) => /[\u4e00-\u9fff]/.test(text);
const step = (what: string) => console.log(`typescript portal: ${what}`);

const client = createClient<paths>({
  baseUrl: url,
  headers: { "X-Api-Key": "demo-portal-key" },
});

async function main(): Promise<void> {
  step("catalogue");
  const catalogue = await client.GET("/api/v1/catalogue");
  assert.ok(catalogue.data, JSON.stringify(catalogue.error));
  const services: Schemas["ServiceView"][] = catalogue.data.services;
  assert.ok(services.some((s) => s.code === service));
  assert.ok(catalogue.data.lookups.some((l) => l.name === "public-security.identity"));

  step("form");
  const form = await client.GET("/api/v1/services/{code}/form", {
    params: { path: { code: service } },
  });
  assert.ok(form.data, JSON.stringify(form.error));
  const properties = form.data.schema["properties"] as Record<string, { title?: string }>;
  assert.equal(properties["enterprise_name"]?.title, "企业名称");
  const materials = new Map(form.data.materials.map((m) => [m.code, m]));
  assert.deepEqual([...materials.keys()].sort(), [...required, deferrable].sort());
  const articles = materials.get("articles-of-association");
  const requiredNeed: Schemas["Need"] = "required";
  assert.equal(articles?.name, "公司章程");
  assert.equal(articles?.need, requiredNeed);
  const formats: Schemas["MaterialFormat"][] = ["ofd", "pdf"];
  assert.deepEqual([...(articles?.formats ?? [])].sort(), formats);
  assert.deepEqual(articles?.matters, [service]);
  assert.equal(materials.get(deferrable)?.need, "deferrable");

  step("lookup with a Chinese purpose and clerk (percent-encoded headers)");
  const lookup = await client.POST("/api/v1/lookups/public-security.identity", {
    params: {
      header: { "X-Lookup-Purpose": encodeURIComponent(purpose), ...clerkHeaders },
    },
    body: { name: "李四", id_number: "34052419800101001X" },
  });
  assert.ok(lookup.data, JSON.stringify(lookup.error));
  assert.equal(lookup.data.department, "public-security");
  assert.equal(lookup.data.result["result"], "match");
  const recorded = await fetch(`${adminUrl}/admin/v1/lookups`, {
    headers: { Authorization: "Bearer demo-operator-token" },
  });
  const records = ((await recorded.json()) as {
    lookups: { lookup: string; purpose: string; clerk: typeof clerk | null }[];
  }).lookups;
  const mine = records.find((r) => r.lookup === "public-security.identity");
  assert.equal(mine?.purpose, purpose);
  assert.deepEqual(mine?.clerk, clerk);

  step("pre-review with problems: typed form, one problem per field, in Chinese");
  const bad: Schemas["MarketRegulationBusinessLicenceForm"] = {
    enterprise_name: "",
    address: "福州市鼓楼区五四路2号",
    legal_representative: { name: "李四", id_number: "340524198001010010" },
    registered_capital: 100,
    business_scope: "餐饮服务",
  };
  const review = await client.POST(`/api/v1/services/${service}/pre-review`, { body: bad });
  assert.ok(review.data, JSON.stringify(review.error));
  assert.equal(review.data.ok, false);
  const problems = new Map(review.data.problems.map((p) => [p.field, p]));
  assert.equal(problems.size, review.data.problems.length, "one problem per field");
  const checksum: Schemas["ProblemCode"] = "checksum";
  assert.equal(problems.get("legal_representative.id_number")?.code, checksum);
  assert.equal(problems.get("enterprise_name")?.code, "length");
  for (const code of required) {
    assert.equal(problems.get(`materials.${code}`)?.code, "required");
  }
  assert.ok(!problems.has(`materials.${deferrable}`), "a deferrable material may come later");
  for (const p of review.data.problems) {
    assert.ok(chinese(p.message) && !p.message.includes("line"), p.message);
  }

  step("pre-review through the {code} route: a wrong type is one problem, in Chinese");
  const loose = await client.POST("/api/v1/services/{code}/pre-review", {
    params: { path: { code: service } },
    body: { ...bad, enterprise_name: "福州演示餐饮有限公司", registered_capital: "lots" },
  });
  assert.ok(loose.data, JSON.stringify(loose.error));
  const onCapital = loose.data.problems.filter((p) => p.field === "registered_capital");
  assert.deepEqual(
    onCapital.map((p) => [p.code, p.message]),
    [["type", "应为数字"]],
  );
  assert.ok(loose.data.problems.every((p) => p.field !== "" && chinese(p.message)));

  step("a draft holding the required materials, uploaded as the files' bytes");
  const draft = await client.POST("/api/v1/services/{code}/drafts", {
    params: { path: { code: service } },
  });
  assert.equal(draft.response.status, 201);
  assert.ok(draft.data, JSON.stringify(draft.error));
  assert.equal(draft.data.service, service);
  const draftId = draft.data.draft_id;
  for (const material of required) {
    const pdf = await readFile(new URL(`${material}.pdf`, samples));
    const stored = await client.PUT("/api/v1/drafts/{id}/materials/{material}", {
      params: { path: { id: draftId, material } },
      // The document's `format: binary` body is a `string` to openapi-typescript: the file goes
      // as one character per byte (latin1) and is sent as those same bytes.
      body: pdf.toString("latin1"),
      bodySerializer: (body) => Buffer.from(body, "latin1"),
      headers: { "Content-Type": "application/octet-stream" },
    });
    assert.equal(stored.response.status, 201, JSON.stringify(stored.error));
    assert.ok(stored.data, JSON.stringify(stored.error));
    assert.equal(stored.data.code, material);
    assert.equal(stored.data.media_type, "application/pdf");
    assert.equal(stored.data.size, pdf.length);
    // The very bytes of the file.
    assert.equal(stored.data.sm3, createHash("sm3").update(pdf).digest("hex"));
  }

  const good: Schemas["MarketRegulationBusinessLicenceForm"] = {
    ...bad,
    enterprise_name: "福州类型演示餐饮有限公司",
    legal_representative: { name: "李四", id_number: "34052419800101001X" },
  };
  const ready = await client.POST(`/api/v1/services/${service}/pre-review`, {
    params: { query: { draft: draftId } },
    body: good,
  });
  assert.ok(ready.data, JSON.stringify(ready.error));
  assert.deepEqual(ready.data.problems, []);
  assert.equal(ready.data.ok, true);
  assert.deepEqual(ready.data.materials.deferrable, [deferrable]);

  step("apply from the draft with an Idempotency-Key and a clerk; the repeat is the same case");
  const key = `typescript-portal-${Date.now()}`;
  const apply = () =>
    client.POST(`/api/v1/services/${service}/applications`, {
      params: { query: { draft: draftId }, header: { "Idempotency-Key": key, ...clerkHeaders } },
      body: good,
    });
  const first = await apply();
  assert.equal(first.response.status, 202);
  assert.ok(first.data, JSON.stringify(first.error));
  assert.equal(first.response.headers.get("idempotent-replayed"), null);
  const again = await apply();
  assert.equal(again.response.headers.get("idempotent-replayed"), "true");
  assert.equal(again.data?.case_id, first.data.case_id);
  const caseId = first.data.case_id;

  step("follow the case to completed through its event stream (it ends with the case)");
  const stream = await client.GET("/api/v1/cases/{id}/events", {
    params: { path: { id: caseId } },
    parseAs: "text",
  });
  assert.ok(typeof stream.data === "string", JSON.stringify(stream.error));
  const events: Schemas["Event"][] = [];
  for (const message of stream.data.split("\n\n")) {
    const fields = new Map<string, string>();
    for (const line of message.split("\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const data = fields.get("data");
    if (data === undefined) continue;
    const event = JSON.parse(data) as Schemas["Event"];
    const kind: Schemas["EventKind"] = event.kind;
    assert.equal(fields.get("event"), kind);
    events.push(event);
  }
  assert.equal(events[0]?.kind, "received");
  assert.ok(events.some((e) => e.kind === "submitted"));
  const approved: Schemas["StepState"] = "approved";
  assert.equal(events.at(-1)?.state, approved);
  assert.deepEqual(events[0]?.clerk, clerk);
  const view = await client.GET("/api/v1/cases/{id}", { params: { path: { id: caseId } } });
  assert.ok(view.data, JSON.stringify(view.error));
  const completed: Schemas["CaseStatus"] = "completed";
  assert.equal(view.data.status, completed);
  const creditCode = view.data.matters[0]?.outputs["credit_code"];
  assert.ok(typeof creditCode === "string" && creditCode.length === 18, String(creditCode));

  step("a typed 404");
  const missing = await client.GET("/api/v1/cases/{id}", {
    params: { path: { id: "no-such-case" } },
  });
  assert.equal(missing.response.status, 404);
  const notFound: Schemas["ErrorCode"] | undefined = missing.error?.error.code;
  assert.equal(notFound, "not_found");

  step("a typed 422");
  const invalid = await client.GET("/api/v1/licences/{id}", {
    params: { path: { id: "1.2.156.3005.2.x" } },
  });
  assert.equal(invalid.response.status, 422);
  assert.equal(invalid.error?.error.code, "invalid_input");
  const fields: Schemas["FieldProblem"][] = invalid.error?.error.fields ?? [];
  assert.deepEqual(
    fields.map((f) => f.field),
    ["id"],
  );

  step("done");
}

main().catch((failed: unknown) => {
  console.error("typescript portal: FAILED:", failed);
  process.exit(1);
});
