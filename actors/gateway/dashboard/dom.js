/* global document, Node */
/**
 * Building the page's DOM from elements, never from HTML strings: every value from the
 * cluster (keys, payloads, error messages) goes in as text, so nothing a job carries can run
 * as code.
 */

/**
 * `h("td", { class: "num", dataset: { state: "ready" }, onclick: f }, "3")`: an element with
 * attributes, listeners (`on...`) and children (strings become text; null, undefined and false
 * are skipped; arrays are flattened).
 */
export const h = (tag, props = {}, ...children) => {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (name === "class") el.className = value
    else if (name === "dataset") Object.assign(el.dataset, value)
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? "" : String(value))
  }
  append(el, children)
  return el
}

const append = (el, children) => {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : String(child))
  }
}

/** Replaces `el`'s children, with the same rules as `h`. */
export const fill = (el, ...children) => {
  el.replaceChildren()
  append(el, children)
}

export const $ = (selector) => document.querySelector(selector)

const svgNs = "http://www.w3.org/2000/svg"

/**
 * A sparkline of `values` (oldest first) in `slots` positions ending at the right edge, so a
 * series that just started grows from the right like the time axis it stands for.
 */
export const sparkline = (values, { width = 120, height = 26, slots = 60 } = {}) => {
  const svg = document.createElementNS(svgNs, "svg")
  svg.setAttribute("class", "spark")
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`)
  svg.setAttribute("width", String(width))
  svg.setAttribute("height", String(height))
  svg.setAttribute("preserveAspectRatio", "none")
  const shown = values.slice(-slots)
  if (shown.length < 2) return svg
  const max = Math.max(...shown)
  const step = width / (slots - 1)
  const x0 = width - (shown.length - 1) * step
  const y = (v) => (max <= 0 ? height - 1.5 : height - 1.5 - (v / max) * (height - 4))
  const points = shown.map((v, i) => `${(x0 + i * step).toFixed(1)},${y(v).toFixed(1)}`)
  const area = document.createElementNS(svgNs, "path")
  area.setAttribute("d", `M${x0.toFixed(1)},${height} L${points.join(" L")} L${width},${height} Z`)
  const line = document.createElementNS(svgNs, "polyline")
  line.setAttribute("points", points.join(" "))
  svg.append(area, line)
  return svg
}

/**
 * A message in the corner: `ok` ones go after a few seconds, errors stay until closed (or a
 * minute), so the API's refusal can be read.
 */
export const toast = (kind, ...content) => {
  const close = h("button", { class: "icon-button", type: "button", title: "Dismiss", "aria-label": "Dismiss" }, "×")
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, h("div", { class: "toast-text" }, content), close)
  close.addEventListener("click", () => el.remove())
  const toasts = $("#toasts")
  toasts.append(el)
  while (toasts.children.length > 4) toasts.firstElementChild.remove()
  setTimeout(() => el.remove(), kind === "error" ? 60_000 : 4_000)
  return el
}
