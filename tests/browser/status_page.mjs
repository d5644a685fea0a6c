// Drives Debian's chromium (no browser download) through the status page and prints what it saw
// as one JSON object on stdout; tests/status_page.rs asserts on it, benches/status_page.sh times it.
//
//   node status_page.mjs check URL SCREENSHOT FILTER WAIT_SECONDS
//   node status_page.mjs bench URL FILTER RUNS
//   node status_page.mjs shot URL PNG WIDTH HEIGHT     (the README's picture: the whole page)
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function launch(viewport) {
  const dir = mkdtempSync(join(tmpdir(), "watchdog-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    viewport,
  });
  return { context, close: async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); } };
}

// Every Content-Security-Policy violation the page causes: the DOM event (recorded by a script
// the browser injects before the page's own, which CSP does not govern) and the console report.
async function watchCsp(page) {
  const violations = [];
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  page.on("console", (m) => {
    if (/Content[- ]Security[- ]Policy/i.test(m.text())) violations.push(m.text());
  });
  return async () => violations.concat(await page.evaluate(() => window.__csp || []));
}

const visibleRows = (page, table) =>
  page.$$eval(`#${table} tbody tr`, (rows) =>
    rows.filter((r) => r.offsetParent !== null).map((r) => Array.from(r.cells, (c) => c.innerText.trim())));

// Types FILTER into the domain filter; resolves with performance.now() (ms since navigation
// start) once the table shows only matching rows.
async function typeFilter(page, filter) {
  await page.fill("#domain-filter", filter);
  const handle = await page.waitForFunction((f) => {
    const rows = Array.from(document.querySelectorAll("#domain-table tbody tr")).filter((r) => r.offsetParent !== null);
    return rows.length > 0 && rows.every((r) => r.textContent.toLowerCase().includes(f.toLowerCase())) && performance.now();
  }, filter, { polling: "raf", timeout: 30000 });
  return handle.jsonValue();
}

async function check(url, screenshot, filter, waitSeconds) {
  const out = {};
  const browser = await launch({ width: 1280, height: 900 });
  try {
    const page = await browser.context.newPage();
    const csp = await watchCsp(page);
    const response = await page.goto(url, { waitUntil: "load" });
    out.status = response.status();
    out.csp_header = response.headers()["content-security-policy"] || "";
    out.critical_rows = await page.$$eval("#finding-table tbody tr.sev-critical", (rows) =>
      rows.filter((r) => r.offsetParent !== null && r.getBoundingClientRect().height > 0).map((r) => r.innerText));
    // Each mark's name, as hovering over it shows it.
    out.marks = [];
    for (const mark of await page.$$("svg.timeline .mark")) {
      await mark.hover();
      out.marks.push(await page.textContent("#mark-info"));
    }
    out.expired_marks = await page.$$eval("svg.timeline .mark.expired", (m) =>
      m.map((e) => ({ cx: Number(e.getAttribute("cx")), fill: getComputedStyle(e).fill })));
    await page.focus("svg.timeline .mark");
    out.focused_mark_info = await page.textContent("#mark-info");
    out.domains_before = (await visibleRows(page, "domain-table")).map((r) => r[0]);
    await typeFilter(page, filter);
    out.domains_filtered = (await visibleRows(page, "domain-table")).map((r) => r[0]);
    out.domain_edge_column = (await visibleRows(page, "domain-table")).map((r) => r[5]);
    await page.click('#domain-table th button[data-col="3"]');
    await page.fill("#domain-filter", "");
    await page.waitForFunction(() => document.querySelectorAll("#domain-table tbody tr").length > 1);
    out.domains_by_expiry = (await visibleRows(page, "domain-table")).map((r) => r[0]);
    out.watch_rows = await visibleRows(page, "watch-table");
    await page.fill("#domain-filter", filter);
    const before = await page.getAttribute("#status", "data-last-success");
    if (waitSeconds > 0) {
      // The page fetches itself again every sync interval: the data moves on, the filter stays.
      await page.waitForFunction((b) => document.querySelector("#status").getAttribute("data-last-success") !== b,
        before, { timeout: waitSeconds * 1000 });
      out.refreshed = true;
      out.filter_after_refresh = await page.inputValue("#domain-filter");
      out.domains_after_refresh = (await visibleRows(page, "domain-table")).map((r) => r[0]);
    }
    await page.fill("#domain-filter", "");
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    out.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: false });
    out.csp_violations = await csp();
  } finally {
    await browser.close();
  }
  return out;
}

async function bench(url, filter, runs) {
  const browser = await launch({ width: 1280, height: 900 });
  const interactive = [];
  try {
    for (let i = 0; i < runs; i++) {
      const page = await browser.context.newPage();
      await page.goto(url, { waitUntil: "commit" });
      interactive.push(await typeFilter(page, filter));
      await page.close();
    }
  } finally {
    await browser.close();
  }
  return { interactive_ms: interactive };
}

async function shot(url, png, width, height) {
  const browser = await launch({ width, height });
  try {
    const page = await browser.context.newPage();
    await page.goto(url, { waitUntil: "load" });
    await page.screenshot({ path: png, fullPage: true });
  } finally {
    await browser.close();
  }
  return { png };
}

const [mode, url, ...rest] = process.argv.slice(2);
const result = mode === "bench"
  ? await bench(url, rest[0], Number(rest[1] || 5))
  : mode === "shot"
    ? await shot(url, rest[0], Number(rest[1]), Number(rest[2]))
    : await check(url, rest[0], rest[1], Number(rest[2] || 0));
process.stdout.write(JSON.stringify(result) + "\n");
