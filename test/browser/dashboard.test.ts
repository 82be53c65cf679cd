/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against three
 * real node processes on a private nats-server, with an HTTP token set: the page asks for the
 * token and shows the API's 401, shows the leader and the members, key writes counted apart from
 * job changes, a job going from ready to leased to completed, a refused retry and a refused cancel
 * with the API's errors, a dead job retried with the button, a purge refused (wrong token) then
 * done, and follows the leader's kill. Screenshots go to .tap/artifacts/dashboard/ so a person
 * can look at what the page looked like at each step.
 *
 * Chromium is required, not optional: CI installs it (.ci/run). Without it this test fails.
 */
import { access, constants, mkdir } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { chromium, type Page } from "playwright-core"
import t from "tap"
import { freePort } from "../../bootstrap/natsServer.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"

const chromiumPath = "/usr/bin/chromium"
const artifacts = fileURLToPath(new URL("../../.tap/artifacts/dashboard/", import.meta.url))
const token = "browser-test-token-0123456789"
/** Three node processes and a browser share two cores: every wait allows this long. */
const patience = 30_000

/** Waits until an element matching `selector` shows `text` (a RegExp matches its whole text when anchored). */
const shows = (page: Page, selector: string, text: string | RegExp) => page.locator(selector, { hasText: text }).first().waitFor({ state: "visible" })

const text = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? "").trim()

const number = async (page: Page, selector: string): Promise<number> => Number((await text(page, selector)).replaceAll(",", ""))

/** The heights of a sparkline's points, 0 at its floor (a zero rate). */
const sparkHeights = async (page: Page, selector: string): Promise<Array<number>> => {
  const svg = page.locator(`${selector} svg`).first()
  const height = Number(await svg.getAttribute("height"))
  const points = (await svg.locator("polyline").getAttribute("points").catch(() => null)) ?? ""
  return points === "" ? [] : points.split(" ").map((xy) => Math.round((height - 1.5 - Number(xy.split(",")[1])) * 10) / 10)
}

t.test("the dashboard against a three-node cluster", async (t) => {
  await access(chromiumPath, constants.X_OK).catch(() => {
    throw new Error(`${chromiumPath} is missing: the browser tests need Debian's chromium (apt-get install chromium; .ci/run installs it)`)
  })
  await mkdir(artifacts, { recursive: true })
  const ports: Record<string, number> = { n1: await freePort(), n2: await freePort(), n3: await freePort() }
  const { cluster, client } = await testCluster(t, { HTTP_TOKEN: token }, { envOf: Object.fromEntries(Object.entries(ports).map(([id, port]) => [id, { HTTP_PORT: String(port) }])) })
  const jobs = new JobsClient(client)
  const leader = await cluster.waitForLeader(patience)
  const follower = cluster.ids.find((id) => id !== leader)!

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: "dark" })
  context.setDefaultTimeout(patience)
  const page = await context.newPage()
  // Anything the page logs as an error, and anything the Content-Security-Policy blocks, is a
  // bug; failed requests (the API's 401 and 409 answers) are expected and logged by chromium too.
  const problems: Array<string> = []
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`)
  })
  const shot = (name: string) => page.screenshot({ path: `${artifacts}${name}.png` })
  // The page is served by a follower: killing the leader later leaves it up.
  const base = `http://127.0.0.1:${ports[follower]}/`

  t.test("without the token the page says so with the API's 401, and takes the token", async (t) => {
    await page.goto(base)
    await shows(page, "#banner", "unauthorized")
    t.match(await text(page, "#banner"), /needs the node's HTTP token/, "the API's message")
    t.ok(await page.locator("#token-dialog").isVisible(), "the token dialog opens by itself")
    t.equal(await text(page, "#live-text"), "Token needed")
    await shot("01-token-needed")
    await page.fill("#token-input", "not-the-token-at-all")
    await page.click("#token-save")
    await shows(page, "#banner", "was refused")
    t.pass("a wrong token is refused, and the page says the token was refused")
    await page.click("#token-open")
    await page.fill("#token-input", token)
    await page.click("#token-save")
    await page.locator("#banner").waitFor({ state: "hidden" })
    t.equal(await text(page, "#live-text"), "Live")
  })

  let revisionBefore = 0
  t.test("the page shows the leader, the members and key-value totals", async (t) => {
    await shows(page, "#leader", new RegExp(`^${leader}$`))
    t.equal(await text(page, "#leader"), leader)
    await page.locator("#members tr[data-member]").nth(2).waitFor()
    t.equal(await page.locator("#members tr[data-member]").count(), 3, "three members")
    t.match(await text(page, `#members tr[data-member="${leader}"]`), /leader/)
    t.match(await text(page, `#members tr[data-member="${follower}"]`), /this node/)
    t.match(await text(page, "#where"), new RegExp(`cluster dev · via node ${follower}`))
    for (const [key, value] of [["users/1", "ada"], ["users/2", "grace"], ["config/theme", "dark"]] as const) await client.put(key, value)
    await shows(page, "#kv-keys", /^3$/)
    revisionBefore = await number(page, "#kv-revision")
    t.ok(revisionBefore >= 3, `the revision (${revisionBefore}) counts the writes`)
    // admin.status's kv.writes, a counter of key changes: the tile's title says it, its growth is the rate.
    await page.locator('#kv-writes[title^="3 key puts"]').waitFor({ state: "attached" })
    t.pass("the node counted three key writes")
    await until("the writes-per-second line rising", async () => (await sparkHeights(page, "#kv-chart")).some((y) => y > 0), { timeoutMs: patience, everyMs: 200 })
    t.pass("the writes per second rose")
    await shot("02-cluster")
  })

  let completedId = ""
  t.test("a job goes from ready to leased to completed", async (t) => {
    const { id } = await jobs.enqueue({ queue: "emails", payload: { to: "ada@example.com", template: "welcome" } })
    completedId = id
    await shows(page, '#queues tr[data-queue="emails"] a[data-count="ready"]', /^1$/)
    // jobs.stats' enqueuedLastMinute over 60: one job in the last minute.
    t.equal(await text(page, '#queues tr[data-queue="emails"] td[data-rate="enqueued"]'), "0.02", "enqueued per second over the last minute")
    await page.click('#queues tr[data-queue="emails"] td.queue-name')
    await page.locator(`#jobs tr[data-job="${id}"][data-state="ready"]`).waitFor()
    t.pass("listed as ready")
    await shot("03-job-ready")
    const [leased] = await jobs.lease({ queues: ["emails"], max: 1, workerId: "browser-test", waitMs: 5_000 })
    t.equal(leased?.id, id)
    await page.locator(`#jobs tr[data-job="${id}"][data-state="leased"]`).waitFor()
    t.pass("then leased")
    await jobs.ack(id, leased!.token, { delivered: true, messageId: "<welcome-1@example.com>" })
    await page.locator(`#jobs tr[data-job="${id}"][data-state="completed"]`).waitFor()
    await shows(page, '#queues tr[data-queue="emails"] a[data-count="completed"]', /^1$/)
    t.pass("then completed")
    await page.click(`#jobs tr[data-job="${id}"]`)
    await shows(page, "#detail-result", "welcome-1@example.com")
    t.match(await text(page, "#detail-payload"), /ada@example\.com/, "the payload")
    t.equal(await text(page, "#detail-state"), "completed")
    // Job transitions move the revision but are no key writes.
    await until("the revision moving past the job's transitions", async () => (await number(page, "#kv-revision")) >= revisionBefore + 3, { timeoutMs: patience, everyMs: 200 })
    t.match(await page.locator("#kv-writes").getAttribute("title"), /^3 key puts/, "still three key writes")
    await shot("04-job-completed")
  })

  t.test("a refused action shows the API's error", async (t) => {
    await page.click("#job-retry")
    await shows(page, ".toast.error", "conflict")
    t.match(await text(page, ".toast.error"), new RegExp(`jobs\\.retry refused: job ${completedId} is completed; only dead, failed or cancelled jobs can be retried`))
    await shot("05-refused")
    await page.click(".toast.error .icon-button")
    t.equal(await page.locator(".toast.error").count(), 0, "dismissed")
    await page.click("#job-cancel")
    await shows(page, ".toast.error", "jobs.cancel refused")
    t.match(await text(page, ".toast.error .toast-text"), new RegExp(`^conflictjobs\\.cancel refused: job ${completedId} is already completed`), "a completed job cannot be cancelled")
    t.equal((await jobs.get(completedId)).state, "completed", "and stays completed")
    await page.click(".toast.error .icon-button")
  })

  t.test("a dead job is retried with the button, then cancelled with the other", async (t) => {
    const { id } = await jobs.enqueue({ queue: "emails", payload: { to: "bob@example.com", template: "invoice" }, maxAttempts: 1 })
    const [leased] = await jobs.lease({ queues: ["emails"], max: 1, workerId: "browser-test", waitMs: 5_000 })
    t.equal(leased?.id, id)
    const failed = await jobs.fail(id, leased!.token, "SMTP 451: mailbox temporarily unavailable")
    t.equal(failed.willRetry, false, "one attempt allowed: dead")
    await shows(page, '#queues tr[data-queue="emails"] a[data-count="dead"]', /^1$/)
    await page.click('#queues tr[data-queue="emails"] a[data-count="dead"]')
    await page.locator(`#jobs tr[data-job="${id}"][data-state="dead"]`).click()
    await shows(page, "#detail-error", "SMTP 451")
    t.equal(await text(page, "#detail-state"), "dead")
    await shot("06-dead-job")
    await page.click("#job-retry")
    await shows(page, ".toast.ok", `Job ${id} will run again`)
    await shows(page, "#detail-state", /^ready$/)
    const job = await jobs.get(id)
    t.match(job, { state: "ready", attempts: 0 }, "ready again with its attempts back")
    await shot("07-retried")
    await page.click("#job-cancel")
    await shows(page, ".toast.ok", `Job ${id} cancelled`)
    await shows(page, "#detail-state", /^cancelled$/)
    t.equal((await jobs.get(id)).state, "cancelled")
  })

  t.test("a purge refused (a wrong token) shows the API's error and purges nothing", async (t) => {
    await page.click('#queues tr[data-queue="emails"] td.queue-name')
    await page.click("#token-open")
    await page.fill("#token-input", "a-token-this-node-refuses")
    await page.click("#token-save")
    await shows(page, "#banner", "was refused")
    await page.click("#purge-open")
    await page.click("#purge-confirm")
    await shows(page, ".toast.error", "jobs.purge refused")
    // What the API itself answers to the same call.
    const direct = await fetch(`${base}api/jobs.purge`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer a-token-this-node-refuses" },
      body: JSON.stringify({ queue: "emails", states: ["completed", "dead", "cancelled"] })
    })
    const { error } = (await direct.json()) as { error: { code: string; message: string } }
    t.equal(direct.status, 401)
    t.equal(await text(page, ".toast.error .toast-text"), `${error.code}jobs.purge refused: ${error.message}`, "the API's code and message")
    await shot("08-purge-refused")
    t.match(await jobs.stats("emails"), [{ completed: 1, cancelled: 1 }], "nothing was purged")
    await page.click(".toast.error .icon-button")
    await page.click("#token-open")
    await page.fill("#token-input", token)
    await page.click("#token-save")
    await page.locator("#banner").waitFor({ state: "hidden" })
  })

  t.test("purge deletes the finished jobs of the queue", async (t) => {
    await page.click('#queues tr[data-queue="emails"] td.queue-name')
    await page.click("#purge-open")
    await page.click("#purge-confirm")
    await shows(page, ".toast.ok", "Purged 2 jobs from emails")
    await shows(page, '#queues tr[data-queue="emails"] a[data-count="completed"]', /^0$/)
    t.equal((await jobs.stats("emails"))[0]?.completed, 0)
  })

  t.test("the page follows a leader's kill", async (t) => {
    await cluster.kill(leader)
    const next = await cluster.waitForLeader(patience, cluster.ids.filter((id) => id !== leader))
    await shows(page, "#leader", new RegExp(`^${next}$`))
    t.not(next, leader)
    t.equal(await text(page, "#leader"), next, "the new leader")
    await shot("09-after-leader-kill")
  })

  t.test("busier queues, in the light scheme and on a smaller screen", async (t) => {
    await jobs.enqueueBatch([
      ...Array.from({ length: 12 }, (_, n) => ({ queue: "emails", payload: { to: `user${n}@example.com`, template: "digest" } })),
      ...Array.from({ length: 4 }, (_, n) => ({ queue: "reports", payload: { report: `monthly-${n}` }, delay: 3_600_000 })),
      { queue: "thumbnails", payload: { image: "cat.png", sizes: [64, 256] }, priority: 5 }
    ])
    // A long lease: the one left leased must still be leased when the page is looked at.
    const leased = await jobs.lease({ queues: ["emails"], max: 3, leaseMs: 600_000, workerId: "browser-test", waitMs: 5_000 })
    await jobs.ack(leased[0]!.id, leased[0]!.token, { sent: true })
    await jobs.fail(leased[1]!.id, leased[1]!.token, "connection reset by peer")
    await shows(page, '#queues tr[data-queue="reports"] a[data-count="scheduled"]', /^4$/)
    await shows(page, '#queues tr[data-queue="emails"] a[data-count="leased"]', /^1$/)
    await page.click('#queues tr[data-queue="emails"] td.queue-name')
    await page.locator(`#jobs tr[data-job="${leased[2]!.id}"][data-state="leased"]`).click()
    await page.locator("#detail-state").waitFor()
    await shot("10-queues-dark")
    await page.emulateMedia({ colorScheme: "light" })
    await shot("11-light")
    await page.keyboard.press("Escape")
    await page.locator("#detail").waitFor({ state: "hidden" })
    t.pass("Escape closes the job")
    await page.setViewportSize({ width: 1280, height: 800 })
    await shot("12-light-1280x800")
  })

  t.test("nothing went wrong in the page", async (t) => {
    t.same(problems, [], "no script errors, no Content-Security-Policy violations")
  })
})
