/* global document, window, location, URLSearchParams, FormData */
/**
 * The Archio dashboard: one page, served by every node's HTTP shim at `/`, that asks this node's
 * `/api/<group>.<op>` once a second (admin.status, admin.members, jobs.stats, kv.scan, and the
 * open queue's jobs.list and job's jobs.get) and redraws what changed. Retry, cancel and purge
 * are the API's own calls; a refusal is shown with the API's code and message.
 *
 * Key writes per second are the growth of admin.status's `kv.writes` (a counter of key changes
 * this node applied) between answers; a queue's enqueued, completed and failed per second are
 * jobs.stats' last-minute counts over 60. The view (queue, state filter, open job) lives in the
 * URL's fragment, so a reload or a shared link shows the same thing.
 */
import { call, getToken, setToken } from "./api.js"
import { $, fill, h, sparkline, toast } from "./dom.js"
import { ago, bytes, count, duration, json, rate, when } from "./format.js"

const pollMs = 1000
/** Samples kept for rates and sparklines. */
const historyMs = 60_000
/** Window of the writes-per-second figure. */
const writesWindowMs = 5_000
/** What jobs.stats' `...LastMinute` counts cover. */
const minuteMs = 60_000
/** Jobs listed per page; "Show more" adds a page, up to the API's page cap. */
const pageStep = 100
const pageCap = 1000
const jobStates = ["scheduled", "ready", "leased", "completed", "failed", "dead", "cancelled"]
/** States `jobs.retry` accepts: the button stands out then (the API still decides). */
const retryable = ["dead", "failed", "cancelled"]

const state = {
  status: undefined,
  statusError: undefined,
  members: undefined,
  membersError: undefined,
  /** Each member's match index at the previous poll: a lagging member whose index stands still is stalled. */
  previousMatch: new Map(),
  matchMoved: new Map(),
  stats: undefined,
  statsError: undefined,
  revision: undefined,
  kvError: undefined,
  list: undefined,
  listError: undefined,
  job: undefined,
  jobError: undefined,
  /** { at, writes } (admin.status's kv.writes) and { at, queues: Map(name -> ready) }, oldest first. */
  writeSamples: [],
  queueSamples: [],
  lastAnswer: undefined,
  offline: undefined,
  unauthorized: undefined,
  askedForToken: false,
  listLimit: pageStep
}

// ---------------------------------------------------------------------------------------------
// The view in the URL fragment: #queue=emails&state=dead&job=12

const readRoute = () => {
  const p = new URLSearchParams(location.hash.slice(1))
  const s = p.get("state") ?? ""
  return { queue: p.get("queue") ?? "", state: jobStates.includes(s) ? s : "", job: p.get("job") ?? "" }
}

const linkTo = (change) => {
  const r = { ...readRoute(), ...change }
  const p = new URLSearchParams()
  for (const k of ["queue", "state", "job"]) if (r[k] !== "") p.set(k, r[k])
  return `#${p.toString()}`
}

const go = (change) => {
  location.hash = linkTo(change)
}

const listKey = (r) => JSON.stringify([r.queue, r.state, state.listLimit])

// ---------------------------------------------------------------------------------------------
// Polling

let timer
let polling = false
let pollAgain = false

/** Polls now (or right after the poll under way), then every `pollMs`. */
const refresh = async () => {
  if (polling) {
    pollAgain = true
    return
  }
  polling = true
  clearTimeout(timer)
  const started = performance.now()
  try {
    await poll()
  } finally {
    polling = false
    render()
    if (pollAgain) {
      pollAgain = false
      void refresh()
    } else if (!document.hidden) timer = setTimeout(refresh, Math.max(0, pollMs - (performance.now() - started)))
    // A hidden tab asks nothing; it polls again once shown (visibilitychange below).
  }
}

const settled = (result) => (result.status === "fulfilled" ? { value: result.value } : { error: result.reason })
const nothing = Promise.resolve(undefined)

const poll = async () => {
  const route = readRoute()
  const key = listKey(route)
  const results = await Promise.allSettled([
    call("admin.status"),
    call("admin.members"),
    call("jobs.stats"),
    // For the store's revision only: the smallest scan there is.
    call("kv.scan", { limit: 1, keysOnly: true, consistency: "stale" }),
    route.queue !== "" ? call("jobs.list", { queue: route.queue, ...(route.state === "" ? {} : { state: route.state }), limit: state.listLimit }) : nothing,
    route.job !== "" ? call("jobs.get", { id: route.job }) : nothing
  ])
  const [status, members, stats, revision, list, job] = results.map(settled)
  const now = Date.now()
  const errors = results.filter((r) => r.status === "rejected").map((r) => r.reason)
  state.offline = errors.find((e) => e.code === "offline")
  if (state.offline === undefined) state.lastAnswer = now
  state.unauthorized = [status, members].map((r) => r.error).find((e) => e?.code === "unauthorized")

  state.status = status.value ?? state.status
  state.statusError = status.error
  if (status.value !== undefined) keep(state.writeSamples, { at: now, writes: status.value.kv.writes })
  if (members.value !== undefined) notice(members.value)
  state.members = members.value ?? (members.error === undefined ? state.members : undefined)
  state.membersError = members.error
  state.stats = stats.value ?? state.stats
  state.statsError = stats.error
  state.kvError = revision.error
  if (revision.value !== undefined) state.revision = revision.value.revision
  if (stats.value !== undefined) keep(state.queueSamples, { at: now, queues: new Map(stats.value.queues.map((q) => [q.queue, q.ready])) })
  if (route.queue !== "") {
    if (list.value !== undefined) state.list = { key, reply: list.value }
    state.listError = list.error
  } else {
    state.list = undefined
    state.listError = undefined
  }
  if (route.job !== "") {
    if (job.value !== undefined) state.job = job.value.job
    else if (job.error?.code === "not_found") state.job = undefined
    state.jobError = job.error
  } else {
    state.job = undefined
    state.jobError = undefined
  }
  if (state.unauthorized !== undefined && getToken() === "" && !state.askedForToken) {
    state.askedForToken = true
    openToken()
  }
}

/** Appends a sample and drops those older than the history. */
const keep = (samples, sample) => {
  samples.push(sample)
  while (samples.length > 0 && samples[0].at < sample.at - historyMs) samples.shift()
}

/** Remembers whether each member's match index moved since the previous answer. */
const notice = (reply) => {
  for (const m of reply.members) {
    const before = state.previousMatch.get(m.id)
    if (before !== undefined && m.matchIndex !== null) state.matchMoved.set(m.id, m.matchIndex > before)
    if (m.matchIndex !== null) state.previousMatch.set(m.id, m.matchIndex)
  }
}

/**
 * How much a counter grew from sample `a` to sample `b`. A counter that went down was reset (the
 * node restarted): that step counts nothing rather than a guess.
 */
const writesBetween = (a, b) => Math.max(0, b.writes - a.writes)

/** Per-second growth of the write counter over the samples of the last `windowMs`. */
const growth = (samples, windowMs) => {
  const last = samples[samples.length - 1]
  if (last === undefined) return undefined
  const from = samples.findIndex((s) => s.at >= last.at - windowMs)
  if (from === samples.length - 1) return undefined
  let grown = 0
  for (let i = from + 1; i < samples.length; i++) grown += writesBetween(samples[i - 1], samples[i])
  return grown / ((last.at - samples[from].at) / 1000)
}

/** Per-sample rates: the sparkline's points. */
const rates = (samples) => {
  const out = []
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].at - samples[i - 1].at) / 1000
    out.push(dt <= 0 ? 0 : writesBetween(samples[i - 1], samples[i]) / dt)
  }
  return out
}

/**
 * A per-second rate from one of jobs.stats' last-minute counts. They count the minute of leader
 * time up to the last applied entry (`stats.time`), which stands still while the cluster is idle:
 * once that entry is a minute old, nothing happened in the last minute.
 */
const perSecond = (lastMinute, stats) => (Date.now() - stats.time >= minuteMs ? 0 : lastMinute / (minuteMs / 1000))

// ---------------------------------------------------------------------------------------------
// Drawing. Each part is rebuilt only when what it shows changed, so a row under the pointer is
// not replaced every second; relative times ("12 s ago") are refreshed in place.

const drawn = new Map()

const redraw = (part, data, draw) => {
  const signature = JSON.stringify(data)
  if (drawn.get(part) === signature) return
  drawn.set(part, signature)
  draw()
}

/** A relative time that `refreshTimes` keeps current. */
const since = (time) => h("time", { datetime: new Date(time).toISOString(), title: when(time), dataset: { at: time } }, ago(time))

/**
 * How long the oldest ready job has waited. `jobs.stats` counts `oldestReadyMs` up to the leader
 * time of the last applied entry (`time`), which stands still while nothing is written, so the
 * page adds the time since: the job has been ready since `time - oldestReadyMs`.
 */
const waiting = (since) => h("td", { class: "num", dataset: { since: since ?? "" } }, since === null ? "—" : "")

const refreshTimes = () => {
  const now = Date.now()
  for (const el of document.querySelectorAll("time[data-at]")) el.textContent = ago(Number(el.dataset.at), now)
  for (const el of document.querySelectorAll("td[data-since]")) {
    if (el.dataset.since === "") continue
    const age = Math.max(0, now - Number(el.dataset.since))
    el.textContent = duration(age)
    el.classList.toggle("age-bad", age >= 60_000)
    el.classList.toggle("age-warn", age >= 10_000 && age < 60_000)
  }
}

const showError = (el, error, what) => {
  el.hidden = error === undefined
  if (error !== undefined) fill(el, h("span", { class: "code" }, error.code), what === undefined ? error.message : `${what}: ${error.message}`)
}

const render = () => {
  const route = readRoute()
  drawTop()
  drawBanner()
  drawCluster()
  drawKv()
  drawQueues(route)
  drawJobs(route)
  drawDetail(route)
  refreshTimes()
}

const drawTop = () => {
  const s = state.status
  redraw("where", [s?.cluster, s?.id, s?.role], () => {
    fill($("#where"), ...(s === undefined ? [] : ["cluster ", h("b", {}, s.cluster), " · via node ", h("b", {}, s.id), ` (${s.role})`]))
    document.title = s === undefined ? "Archio" : `Archio · ${s.cluster}`
  })
  const live = $("#live")
  const mode = state.offline !== undefined ? "offline" : state.unauthorized !== undefined ? "locked" : state.lastAnswer !== undefined ? "live" : "connecting"
  live.dataset.state = mode
  $("#live-text").textContent = { offline: "Offline", locked: "Token needed", live: "Live", connecting: "Connecting…" }[mode]
  live.title = state.lastAnswer === undefined ? "" : `Last answer ${when(state.lastAnswer)}; asks again every ${pollMs / 1000} s`
  $("#token-open").textContent = getToken() === "" ? "Token" : "Token ✓"
}

const drawBanner = () => {
  const banner = $("#banner")
  const off = state.offline
  const locked = state.unauthorized
  redraw("banner", [off?.message, locked?.message, off === undefined ? 0 : state.lastAnswer, getToken() !== ""], () => {
    banner.hidden = off === undefined && locked === undefined
    banner.classList.toggle("bad", off !== undefined)
    if (off !== undefined) {
      fill(banner, 
        h("span", { class: "code" }, off.code),
        h("span", {}, `${off.message}. Retrying every second`, state.lastAnswer === undefined ? "." : ["; last answer ", since(state.lastAnswer), "."])
      )
    } else if (locked !== undefined) {
      fill(banner, 
        h("span", { class: "code" }, locked.code),
        h("span", { class: "spacer" }, locked.message, getToken() === "" ? "" : " (the token this tab sends was refused)"),
        h("button", { class: "button small", type: "button", onclick: openToken }, "Enter token")
      )
    }
  })
}

const crown = () => {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg")
  svg.setAttribute("viewBox", "0 0 24 24")
  svg.setAttribute("class", "crown")
  svg.setAttribute("aria-hidden", "true")
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path")
  path.setAttribute("d", "M3 7l4.5 4L12 4l4.5 7L21 7l-2 12H5L3 7z")
  svg.append(path)
  return svg
}

const roleVerb = { leader: "leads", follower: "follows", candidate: "campaigns", precandidate: "campaigns" }

const tile = (label, value, sub, options = {}) =>
  h(
    "div",
    { class: `tile ${options.class ?? ""}` },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value", id: options.id, title: options.title }, value),
    h("div", { class: "tile-sub" }, sub ?? "\u00a0")
  )

const drawCluster = () => {
  const s = state.status
  // A missing token is the banner's to say; other failures (no leader, a timeout) are said here.
  const error = [state.statusError, state.membersError].find((e) => e !== undefined && e.code !== "unauthorized")
  showError($("#cluster-error"), error, error === state.statusError ? "admin.status" : "admin.members")
  $(".cluster").classList.toggle("stale", state.statusError !== undefined && s !== undefined)
  const view = state.members ?? (s === undefined ? undefined : { members: s.members, leader: s.leader })
  const leader = s?.leader ?? null
  redraw("cluster", [s && { ...s, uptimeMs: Math.floor(s.uptimeMs / 60_000), admission: null }, view, [...state.matchMoved], state.unauthorized === undefined], () => {
    $("#cluster-note").textContent = s === undefined ? "" : `cluster id ${s.clusterId || "not chosen yet"}`
    if (s === undefined) {
      fill($("#cluster-tiles"), tile("Leader", "—", undefined, { id: "leader" }), tile("Term", "—"), tile("Commit index", "—"), tile("Applied index", "—"), tile("Leader changes", "—"), tile("Last snapshot", "—"))
    } else {
      const snap = s.snapshot
      const behind = s.commitIndex - s.appliedIndex
      fill($("#cluster-tiles"), 
        leader === null
          ? tile("Leader", "none", "election under way", { id: "leader", class: "warn" })
          : tile("Leader", [crown(), leader], `leads term ${count(s.term)}`, { id: "leader", class: "leader" }),
        tile("Term", count(s.term), `${s.id} ${roleVerb[s.role] ?? s.role}`, { id: "term" }),
        tile("Commit index", count(s.commitIndex), `log ${count(s.firstIndex)} – ${count(s.lastIndex)}`, { id: "commit" }),
        tile("Applied index", count(s.appliedIndex), behind === 0 ? "caught up" : `${count(behind)} behind commit`, { id: "applied" }),
        tile("Leader changes", count(s.leaderChanges), `seen by ${s.id}`, { id: "leader-changes" }),
        snap === null
          ? tile("Last snapshot", "none", "not taken yet", { id: "snapshot" })
          : tile("Last snapshot", `#${count(snap.index)}`, [bytes(snap.size), " · ", since(snap.time)], { id: "snapshot", title: `index ${snap.index}, term ${snap.term}` })
      )
    }
    const rows = (view?.members ?? []).map((m) => {
      const lag = m.lag
      const here = m.id === s?.id
      const [mode, text] =
        m.id === view.leader
          ? ["leader", "leader"]
          : lag === null
            ? here
              ? [s.role, s.role]
              : ["unknown", "unknown"]
            : lag === 0
              ? ["in-sync", "in sync"]
              : state.matchMoved.get(m.id) === false
                ? ["behind", "stalled"]
                : ["in-sync", "replicating"]
      return h(
        "tr",
        { dataset: { member: m.id } },
        h("td", {}, m.id, here ? h("span", { class: "tag" }, "this node") : null),
        h("td", {}, m.role),
        h("td", {}, h("span", { class: "badge", dataset: { state: mode } }, text)),
        h("td", { class: "num" }, count(m.matchIndex)),
        h("td", { class: `num ${lag !== null && lag > 0 && mode === "behind" ? "lag-bad" : ""}` }, lag === null ? "—" : count(lag))
      )
    })
    fill($("#members"), ...(rows.length > 0 ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 5 }, s !== undefined ? "No members yet" : state.unauthorized !== undefined ? "The cluster's state needs this node's HTTP token." : "Waiting for admin.status…"))]))
  })
}

const drawKv = () => {
  const totals = state.status?.kv
  const writes = growth(state.writeSamples, writesWindowMs)
  const series = rates(state.writeSamples)
  showError($("#kv-error"), state.kvError, "kv.scan")
  redraw("kv", [totals, state.revision, writes === undefined ? null : rate(writes), series], () => {
    fill($("#kv-tiles"), 
      tile("Keys", count(totals?.keys), "live keys", { id: "kv-keys" }),
      tile("Size", bytes(totals?.bytes), "keys and values", { id: "kv-bytes" }),
      tile("Revision", count(state.revision), "writes + job changes", { id: "kv-revision", title: "Every key write and every job transition moves the revision on by one" }),
      tile("Writes/s", rate(writes), `last ${writesWindowMs / 1000} s`, {
        id: "kv-writes",
        title: totals === undefined ? undefined : `${count(totals.writes)} key puts, deletes and expiries applied by this node since it started`
      })
    )
    fill($("#kv-chart"), sparkline(series, { width: 400, height: 54 }))
  })
}

const drawQueues = (route) => {
  const stats = state.stats
  showError($("#queues-error"), state.statsError, "jobs.stats")
  $(".queues").classList.toggle("stale", state.statsError !== undefined && stats !== undefined)
  const queues = stats?.queues ?? []
  const view = queues.map(({ oldestReadyMs, ...q }) => ({
    ...q,
    readySince: q.ready > 0 ? stats.time - oldestReadyMs : null,
    enq: rate(perSecond(q.enqueuedLastMinute, stats)),
    done: rate(perSecond(q.completedLastMinute, stats)),
    fails: rate(perSecond(q.failedLastMinute, stats)),
    spark: state.queueSamples.map((x) => x.queues.get(q.queue) ?? 0)
  }))
  redraw("queues", [view, route.queue, route.state, stats === undefined], () => {
    $("#queues-note").textContent = stats === undefined ? "" : `${queues.length} ${queues.length === 1 ? "queue" : "queues"}`
    const rows = view.map((q) =>
      h(
        "tr",
        { class: `clickable ${q.queue === route.queue ? "selected" : ""}`, dataset: { queue: q.queue }, onclick: (e) => e.target.closest("a") === null && go({ queue: q.queue, state: "", job: "" }) },
        h("td", { class: "queue-name" }, q.queue),
        jobStates.map((s) =>
          h(
            "td",
            { class: "num" },
            h(
              "a",
              {
                class: `count ${q[s] === 0 ? "zero" : ""} ${q.queue === route.queue && s === route.state ? "active" : ""}`,
                href: linkTo({ queue: q.queue, state: s, job: "" }),
                dataset: { state: s, count: s },
                title: `${count(q[s])} ${s} in ${q.queue}`
              },
              count(q[s])
            )
          )
        ),
        h("td", { class: "num", dataset: { rate: "enqueued" } }, q.enq),
        h("td", { class: "num", dataset: { rate: "completed" } }, q.done),
        h("td", { class: "num", dataset: { rate: "failed" } }, q.fails),
        waiting(q.readySince),
        h("td", {}, sparkline(q.spark, { width: 110, height: 24 }))
      )
    )
    const empty = stats === undefined ? "Waiting for jobs.stats…" : "No queues yet: a queue appears here once a job is enqueued on it (jobs.enqueue)."
    fill($("#queues"), ...(rows.length > 0 ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 13 }, empty))]))
  })
}

const drawJobs = (route) => {
  const stats = state.stats?.queues.find((q) => q.queue === route.queue)
  const list = state.list?.key === listKey(route) ? state.list.reply : undefined
  showError($("#jobs-error"), route.queue === "" ? undefined : state.listError, "jobs.list")
  $("#purge-open").hidden = route.queue === ""
  redraw("jobs", [route, stats, list, state.listLimit], () => {
    fill($("#jobs-title"), ...(route.queue === "" ? ["Jobs"] : ["Jobs in ", h("span", { class: "queue-pick" }, route.queue)]))
    const total = stats === undefined ? undefined : jobStates.reduce((n, s) => n + stats[s], 0)
    const chip = (s, label, n) =>
      h(
        "button",
        { class: "chip", type: "button", role: "tab", "aria-selected": String(route.state === s), dataset: { state: s === "" ? undefined : s, filter: s || "all" }, onclick: () => go({ state: s, job: "" }) },
        label,
        h("span", { class: "n" }, count(n))
      )
    fill($("#state-filter"), ...(route.queue === "" ? [] : [chip("", "All", total), ...jobStates.map((s) => chip(s, s[0].toUpperCase() + s.slice(1), stats?.[s]))]))
    const empty = (text) => [h("tr", {}, h("td", { class: "empty", colspan: 7 }, text))]
    let rows
    if (route.queue === "") rows = empty("Pick a queue above to list its jobs; click a job to see its payload, attempts, errors and result.")
    else if (list === undefined) rows = empty("Loading…")
    else if (list.jobs.length === 0) rows = empty(route.state === "" ? `No jobs in ${route.queue}.` : `No ${route.state} jobs in ${route.queue}.`)
    else {
      rows = list.jobs.map((j) =>
        h(
          "tr",
          { class: `clickable ${j.id === route.job ? "selected" : ""}`, dataset: { job: j.id, state: j.state }, onclick: () => go({ job: j.id }) },
          h("td", {}, h("span", { class: "job-id" }, j.id)),
          h("td", {}, h("span", { class: "badge", dataset: { state: j.state } }, j.state)),
          h("td", { class: "num" }, `${j.attempts} / ${j.maxAttempts}`),
          h("td", { class: "num" }, String(j.priority)),
          h("td", {}, since(j.createdAt)),
          h("td", {}, since(j.updatedAt)),
          h("td", { class: "error-cell", title: j.error ?? "" }, j.error ?? "")
        )
      )
    }
    fill($("#jobs"), ...rows)
    const more =
      list?.cursor === undefined
        ? []
        : state.listLimit >= pageCap
          ? [h("span", { class: "muted" }, `Showing the first ${count(pageCap)} jobs`)]
          : [
              h(
                "button",
                {
                  class: "button small",
                  type: "button",
                  onclick: () => {
                    state.listLimit = Math.min(pageCap, state.listLimit + pageStep)
                    void refresh()
                  }
                },
                `Show ${pageStep} more`
              )
            ]
    fill($("#jobs-more"), ...more)
  })
}

const drawDetail = (route) => {
  const aside = $("#detail")
  const open = route.job !== ""
  aside.hidden = !open
  const job = state.job?.id === route.job ? state.job : undefined
  redraw("detail", [route.job, job, state.jobError?.message], () => {
    if (!open) return fill(aside)
    const close = h("button", { class: "icon-button", type: "button", title: "Close (Esc)", "aria-label": "Close", onclick: () => go({ job: "" }) }, "×")
    if (job === undefined) {
      const e = state.jobError
      return fill(aside, 
        h("div", { class: "detail-head" }, h("h3", {}, `Job ${route.job}`), h("span", { class: "spacer" }), close),
        e === undefined ? h("p", { class: "muted" }, "Loading…") : h("p", {}, h("span", { class: "code" }, e.code), " ", e.message)
      )
    }
    const fact = (label, value) => (value === undefined || value === null || value === "" ? [] : [h("dt", {}, label), h("dd", {}, value)])
    const at = (t) => (t === undefined ? undefined : [when(t), " (", since(t), ")"])
    fill(aside, 
      h("div", { class: "detail-head" }, h("h3", {}, `Job ${job.id}`), h("span", { class: "badge", id: "detail-state", dataset: { state: job.state } }, job.state), h("span", { class: "spacer" }), close),
      h(
        "div",
        { class: "detail-actions" },
        h("button", { class: `button ${retryable.includes(job.state) ? "primary" : ""}`, type: "button", id: "job-retry", title: "jobs.retry: run a dead, failed or cancelled job again", onclick: (e) => act(e.currentTarget, "jobs.retry", { id: job.id }, () => `Job ${job.id} will run again`) }, "Retry"),
        h("button", { class: "button danger", type: "button", id: "job-cancel", title: "jobs.cancel: never run this job (again)", onclick: (e) => act(e.currentTarget, "jobs.cancel", { id: job.id }, () => `Job ${job.id} cancelled`) }, "Cancel")
      ),
      h(
        "dl",
        { class: "facts" },
        fact("Queue", job.queue),
        fact("Attempts", `${job.attempts} of ${job.maxAttempts}`),
        fact("Priority", String(job.priority)),
        fact("Created", at(job.createdAt)),
        fact("Runs at", at(job.runAt)),
        fact("Updated", at(job.updatedAt)),
        fact("Finished", at(job.finishedAt)),
        fact("Worker", job.workerId),
        fact("Lease until", at(job.leaseUntil)),
        fact("Unique key", job.uniqueKey)
      ),
      h("div", { class: "block-label" }, "Payload"),
      h("pre", { class: "json", id: "detail-payload" }, json(job.payload)),
      job.error === undefined ? null : [h("div", { class: "block-label" }, "Last error"), h("pre", { class: "json error", id: "detail-error" }, job.error)],
      job.result === undefined ? null : [h("div", { class: "block-label" }, "Result"), h("pre", { class: "json", id: "detail-result" }, json(job.result))],
      job.progress === undefined ? null : [h("div", { class: "block-label" }, "Progress"), h("pre", { class: "json" }, json(job.progress))]
    )
  })
}

// ---------------------------------------------------------------------------------------------
// Actions: each one API call; a refusal shows the API's code and message.

const refused = (what, e) => toast("error", h("span", { class: "code" }, e.code ?? "error"), `${what} refused: ${e.message}`)

const act = async (button, op, body, success) => {
  button.disabled = true
  try {
    const reply = await call(op, body)
    toast("ok", success(reply))
    void refresh()
  } catch (e) {
    refused(op, e)
  } finally {
    button.disabled = false
  }
}

// ---------------------------------------------------------------------------------------------
// Dialogs

const tokenDialog = $("#token-dialog")

function openToken() {
  $("#token-input").value = getToken()
  const locked = state.unauthorized
  const error = $("#token-error")
  error.hidden = locked === undefined
  error.textContent = locked === undefined ? "" : `${locked.code}: ${locked.message}`
  if (!tokenDialog.open) tokenDialog.showModal()
  $("#token-input").focus()
}

$("#token-open").addEventListener("click", openToken)
$("#token-cancel").addEventListener("click", () => tokenDialog.close())
$("#token-forget").addEventListener("click", () => {
  setToken("")
  tokenDialog.close()
  void refresh()
})
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault()
  setToken($("#token-input").value.trim())
  tokenDialog.close()
  void refresh()
})

const purgeDialog = $("#purge-dialog")
$("#purge-open").addEventListener("click", () => {
  $("#purge-queue").textContent = readRoute().queue
  purgeDialog.showModal()
})
$("#purge-cancel").addEventListener("click", () => purgeDialog.close())
$("#purge-form").addEventListener("submit", (e) => {
  e.preventDefault()
  const queue = readRoute().queue
  const states = new FormData($("#purge-form")).getAll("states")
  purgeDialog.close()
  if (states.length === 0) return toast("error", "Pick at least one state to purge.")
  void act($("#purge-open"), "jobs.purge", { queue, states }, (reply) => `Purged ${count(reply.purged)} ${reply.purged === 1 ? "job" : "jobs"} from ${queue}`)
})

window.addEventListener("hashchange", () => {
  state.listLimit = pageStep
  render()
  void refresh()
})
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) void refresh()
})
window.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && readRoute().job !== "" && !tokenDialog.open && !purgeDialog.open) go({ job: "" })
})

void refresh()
