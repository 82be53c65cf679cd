/**
 * kv.txn and kv.scan over the wire: a single-node cluster run in-process on a private
 * nats-server, driven with raw NATS requests carrying hand-written JSON, as a client in another
 * language would send them.
 */
import t from "tap"
import { send, singleNode } from "../support/node.ts"

t.test("kv.txn and kv.scan on a single node", async (t) => {
  const nc = await singleNode(t)
  const put = async (key: string, value: string) => (await send(nc, "put", JSON.stringify({ key, value }))).body
  await send(nc, "del", '{"key":"boot"}')

  t.test("txn: success branch, one revision for every key it writes", async (t) => {
    const a = await put("acct/a", "100")
    const before = a["revision"] as number
    const r = await send(
      nc,
      "txn",
      `{"compare":[{"key":"acct/a","target":"value","op":"==","value":"100"},
                   {"key":"acct/b","target":"create","op":"==","value":0}],
        "success":[{"op":"put","key":"acct/a","value":"60"},{"op":"put","key":"acct/b","value":"40"}],
        "failure":[{"op":"put","key":"acct/failed","value":"1"}]}`
    )
    t.same(r.body, { ok: true, succeeded: true, revision: before + 1, node: "n1" })
    t.equal(r.code, undefined)
    const scan = await send(nc, "scan", '{"prefix":"acct/"}')
    t.match(scan.body, {
      ok: true,
      items: [
        { key: "acct/a", value: "60", modRevision: before + 1, version: 2 },
        { key: "acct/b", value: "40", createRevision: before + 1, modRevision: before + 1, version: 1 }
      ],
      revision: before + 1,
      consistency: "linearizable"
    })
    t.equal(scan.body["cursor"], undefined, "no more pages")
  })

  t.test("txn: failure branch and the idempotency token", async (t) => {
    const payload = `{"compare":[{"key":"acct/a","target":"mod","op":"<","value":1}],
      "success":[{"op":"del","key":"acct/a"}],
      "failure":[{"op":"put","key":"acct/audit","value":"refused"}],
      "token":{"client":"py-1","seq":1}}`
    const first = await send(nc, "txn", payload)
    t.match(first.body, { ok: true, succeeded: false })
    const retry = await send(nc, "txn", payload)
    t.same(retry.body, first.body, "a retry with the same token gets the first answer")
    const audit = await send(nc, "get", '{"key":"acct/audit"}')
    t.match(audit.body, { ok: true, value: "refused", version: 1 }, "applied once")
    t.match((await send(nc, "get", '{"key":"acct/a"}')).body, { ok: true, value: "60" })
  })

  t.test("txn: bad requests are refused and write nothing", async (t) => {
    const revision = (await send(nc, "scan", '{"limit":1,"keysOnly":true}')).body["revision"]
    const bad: Array<[string, RegExp]> = [
      ['{"compare":[{"key":"a","target":"mod","op":"==","value":"x"}],"success":[],"failure":[]}', /compare/],
      ['{"compare":[{"key":"a","target":"size","op":"==","value":1}],"success":[],"failure":[]}', /compare/],
      ['{"compare":[{"key":"a","target":"mod","op":">=","value":1}],"success":[],"failure":[]}', /compare/],
      ['{"compare":[{"key":"a","target":"mod","op":"==","value":1,"extra":true}],"success":[],"failure":[]}', /extra/],
      ['{"compare":[],"success":[{"op":"get","key":"a"}],"failure":[]}', /success/],
      ['{"compare":[],"success":[],"failure":[],"tokn":{"client":"x","seq":1}}', /tokn/],
      ['{"compare":[],"success":[]}', /failure/],
      ['{"compare":[],"success":[{"op":"put","key":"k","value":"1"},{"op":"del","key":"k"}],"failure":[]}', /appears more than once/],
      ["{not json", /invalid JSON/]
    ]
    for (const [payload, message] of bad) {
      const r = await send(nc, "txn", payload)
      t.equal(r.code, "400", payload)
      t.match(r.body, { ok: false, error: { code: "bad_request", message } }, payload)
    }
    t.equal((await send(nc, "scan", '{"limit":1,"keysOnly":true}')).body["revision"], revision, "nothing was written")
  })

  t.test("scan: ranges, limit, cursor pages, keysOnly, stale", async (t) => {
    const keys = ["p/05", "p/01", "p/03", "p/02", "p/04", "q", "o"]
    for (const k of keys) await put(k, `v${k}`)
    const page1 = await send(nc, "scan", '{"prefix":"p/","limit":2}')
    t.match(page1.body, { ok: true, items: [{ key: "p/01", value: "vp/01" }, { key: "p/02" }] })
    t.type(page1.body["cursor"], "string")
    const pages: string[] = []
    let cursor = page1.body["cursor"] as string | undefined
    pages.push(...(page1.body["items"] as Array<{ key: string }>).map((i) => i.key))
    while (cursor !== undefined) {
      const next = await send(nc, "scan", JSON.stringify({ prefix: "p/", limit: 2, cursor }))
      pages.push(...(next.body["items"] as Array<{ key: string }>).map((i) => i.key))
      cursor = next.body["cursor"] as string | undefined
    }
    t.same(pages, ["p/01", "p/02", "p/03", "p/04", "p/05"], "the cursor walks every key once")

    const range = await send(nc, "scan", '{"start":"p/02","end":"p/04","keysOnly":true,"consistency":"stale"}')
    const items = range.body["items"] as Array<Record<string, unknown>>
    t.match(items, [
      { key: "p/02", createRevision: Number, modRevision: Number, version: 1 },
      { key: "p/03", createRevision: Number, modRevision: Number, version: 1 }
    ])
    t.equal(items.length, 2, "end is exclusive")
    t.ok(items.every((i) => !("value" in i)), "keysOnly leaves the values out")
    t.equal(range.body["consistency"], "stale")
    t.same((await send(nc, "scan", '{"prefix":"nothing/"}')).body["items"], [])
  })

  t.test("scan: bad requests", async (t) => {
    const bad: Array<[string, RegExp]> = [
      ['{"cursor":"!!not-base64!!"}', /cursor/],
      ['{"cursor":"_w"}', /cursor/], // base64url of 0xFF: not UTF-8
      ['{"cursor":"AA"}', /cursor/], // a NUL byte: not a key
      ['{"cursor":""}', /cursor/],
      ['{"prefix":"a","start":"b"}', /prefix/],
      ['{"limit":0}', /limit/],
      ['{"limit":100000}', /limit/],
      ['{"keysonly":true}', /keysonly/],
      ['{"consistency":"eventual"}', /consistency/]
    ]
    for (const [payload, message] of bad) {
      const r = await send(nc, "scan", payload)
      t.equal(r.code, "400", payload)
      t.match(r.body, { ok: false, error: { code: "bad_request", message } }, payload)
    }
  })
})
