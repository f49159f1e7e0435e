// tests/browser/upload.test.mjs - the guest upload page /u/{token} in
// Debian's headless Chromium (playwright-core).
//
//   node tests/browser/upload.test.mjs
//
// Starts its own stack (upload_stack.py: uploads enabled, two upload links
// of location:ct, DICOM files made by dcmtk), then: a guest opens the
// link, is told to choose a file when sending none, picks three DICOM files
// in both transfer syntaxes and a text file, sees a progress bar and an
// outcome per file (the text file refused, its bar not full) and the
// studies received; at 390 px a refusal reads on a line of its own; the studies are in alice's worklist; a guest of
// the password link gets the password form first, a wrong password says
// how many tries remain, the right one opens the page; a file larger than
// the page's limit is skipped, not sent; without a session cookie the first
// file goes alone, so three files spend one use; a session that ended stops
// the queue and says so.  Screenshots go to $ARTIFACTS (default
// tests/artifacts).  Prints "N passed, N failed" last.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.ARTIFACTS || path.join(HERE, "..", "artifacts");
fs.mkdirSync(ARTIFACTS, { recursive: true });
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const work = fs.mkdtempSync(path.join(os.tmpdir(), "ss-upload-browser-"));
const infoFile = path.join(work, "stack.json");
const stackLog = fs.openSync(path.join(work, "stack.log"), "a");
const stack = spawn("/usr/bin/python3", [path.join(HERE, "upload_stack.py"), infoFile],
  { stdio: ["ignore", stackLog, stackLog] });

const results = [];
let shot = 0;

function assert(cond, msg) {
  if (!cond)
    throw new Error("assertion failed: " + msg);
}

async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, "upload-" + String(shot).padStart(2, "0") + "-" + name + ".png");
  await page.screenshot({ path: file, fullPage: true });
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log("ok   " + name + " (" + (Date.now() - t0) + " ms)");
  } catch (e) {
    results.push([name, false]);
    console.log("FAIL " + name + ": " + (e && e.stack ? e.stack : e));
  }
}

async function waitInfo() {
  for (let i = 0; i < 900; i++) {
    if (fs.existsSync(infoFile))
      return JSON.parse(fs.readFileSync(infoFile, "utf8"));
    if (stack.exitCode !== null)
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the stack did not start:\n" + fs.readFileSync(path.join(work, "stack.log"), "utf8").slice(-3000));
}

let browser;
try {
  const info = await waitInfo();
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ARGS });

  await step("a guest opens the upload link and sees the upload page", async () => {
    const guest = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await guest.newPage();
    const errors = []; /* failed responses, but the browser's favicon probe */
    page.on("response", (r) => {
      if (r.status() >= 400 && !r.url().endsWith("/favicon.ico"))
        errors.push(r.status() + " " + new URL(r.url()).pathname.replace(/\/u\/[^/]+/, "/u/T"));
    });
    await page.goto(info.open_link);
    await page.waitForSelector("#upload-form");
    assert((await page.textContent("#link-message")).includes("Please send the CT"), "the link's message");
    await screenshot(page, "page");
    // Send with nothing chosen says so.
    await page.click("#send");
    await page.waitForFunction(() => {
      const m = document.getElementById("choose-message");
      return m && m.textContent === "Choose at least one file.";
    }, null, { timeout: 5000 });
    await screenshot(page, "no-file");
    await page.setInputFiles("#files", info.files);
    await page.click("#send");
    await page.waitForFunction(() => {
      const li = document.querySelectorAll("#progress li");
      return li.length === 4 && [...li].every((x) => x.className === "ok" || x.className === "refused");
    }, null, { timeout: 30000 });
    const items = await page.$$eval("#progress li", (ls) => ls.map((l) => ({
      name: l.querySelector(".name").textContent, cls: l.className,
      state: l.querySelector(".state").textContent,
      done: l.querySelector("progress").value === l.querySelector("progress").max })));
    for (const it of items) {
      if (it.name === "notes.txt") {
        assert(it.cls === "refused" && it.state.includes("not accepted as DICOM"), "text refused: " + it.state);
        // Its bar is not the full bar of a received file.
        assert(!it.done, "a refused file's bar is full: " + JSON.stringify(it));
      } else {
        assert(it.cls === "ok" && it.state === "received" && it.done, "accepted: " + JSON.stringify(it));
      }
    }
    const rows = await page.$$eval("#summary tbody tr", (rs) => rs.map((r) => r.textContent));
    assert(rows.length === 2, "two studies: " + rows);
    assert(rows.some((r) => r.includes("UPLOAD, JANE") && r.includes("2026-11-01") && r.includes("CT")), "CT row: " + rows);
    assert(rows.some((r) => r.includes("ROE, RICHARD") && r.includes("PHOTO")), "photo row: " + rows);
    assert((await page.textContent("#summary-counts")).includes("2 studies and 3 files"), "counts");
    assert(errors.length === 1 && errors[0] === "415 /u/T/files", "only the text file refused: " + errors);
    assert(await page.textContent("#choose-message") === "", "the no-file message stays after a send");
    await screenshot(page, "received");
    await guest.close();
  });

  await step("at 390 px a refused file's outcome is readable, not a word per line", async () => {
    const guest = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const page = await guest.newPage();
    await page.goto(info.open_link);
    await page.waitForSelector("#upload-form");
    await page.setInputFiles("#files", [info.files[3]]);
    await page.click("#send");
    await page.waitForSelector("#progress li.refused", { timeout: 30000 });
    const m = await page.$eval("#progress li.refused .state", (e) => {
      const r = e.getBoundingClientRect();
      const cs = getComputedStyle(e);
      const lh = parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.2;
      return { width: r.width, lines: Math.round(r.height / lh),
               text: e.textContent, page: document.documentElement.scrollWidth };
    });
    assert(m.page <= 390, "the page is " + m.page + " px wide");
    assert(m.width >= 250 && m.lines <= 3, "the refusal squeezed: " + JSON.stringify(m));
    await screenshot(page, "narrow-refused");
    await guest.close();
  });

  await step("the studies are in the link's worklist", async () => {
    const r = await fetch(info.url + "/api/v1/worklists/location:ct/studies?limit=500",
      { headers: { Authorization: "Bearer " + info.alice_token } });
    const body = await r.json();
    const d = body.studies.map((s) => s.description);
    assert(d.includes("CT HEAD UPLOADED") && d.includes("PHOTO"), "worklist: " + d);
  });

  await step("the password link asks for the password first", async () => {
    const guest = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await guest.newPage();
    await page.goto(info.pw_link);
    await page.waitForSelector("#password-form");
    await screenshot(page, "password");
    await page.fill("#password", "not-the-password");
    await page.click("#open");
    await page.waitForSelector("#password-form");
    assert((await page.textContent("#message")).includes("2 attempts left"), "attempts left");
    await page.fill("#password", info.password);
    await page.click("#open");
    await page.waitForSelector("#upload-form");
    await page.setInputFiles("#files", [info.files[2]]);
    await page.click("#send");
    await page.waitForSelector("#progress li.ok", { timeout: 30000 });
    await screenshot(page, "password-received");
    await guest.close();
  });

  // The POSTs of files a page makes; each with its place in the order of
  // events: when it was sent and when its answer arrived.
  function watchFiles(page) {
    const sent = [];
    let tick = 0;
    const isFile = (r) => r.method() === "POST" && r.url().endsWith("/files");
    page.on("request", (r) => {
      if (isFile(r))
        sent.push({ req: r, at: ++tick, answered: null });
    });
    page.on("response", (resp) => {
      const s = sent.find((x) => x.req === resp.request());
      if (s)
        s.answered = ++tick;
    });
    return sent;
  }

  async function settled(page, n) {
    await page.waitForFunction((k) => {
      const li = document.querySelectorAll("#progress li");
      return li.length === k && [...li].every((x) => x.className === "ok" || x.className === "refused");
    }, n, { timeout: 30000 });
    return page.$$eval("#progress li", (ls) => ls.map((l) => ({
      name: l.querySelector(".name").textContent, cls: l.className,
      state: l.querySelector(".state").textContent })));
  }

  const api = (method, p, body) => fetch(info.url + p, {
    method, headers: { Authorization: "Bearer " + info.alice_token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });

  async function uses(url) {
    const r = await api("GET", "/api/v1/worklists/location:ct/upload-links");
    const l = (await r.json()).links.find((x) => x.url === url);
    return l ? l.uses : null;
  }

  await step("a file larger than the page's limit is skipped, not sent", async () => {
    const guest = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await guest.newPage();
    const sent = watchFiles(page);
    await page.goto(info.open_link);
    await page.waitForSelector("#upload-form");
    const max = Number(await page.getAttribute("#file-max", "data-bytes"));
    assert(max > 0, "the limit is on the page: " + max);
    // Shown in the reader's units and time, not as raw bytes and ISO.
    const shown = await page.textContent("#file-max");
    assert(/^\d+(\.\d)? (bytes|KB|MB|GB)$/.test(shown) && (max < 1024 || !shown.endsWith(" bytes")),
      "the limit in units: " + shown);
    const ends = await page.textContent("#expires");
    const iso = await page.getAttribute("#expires", "datetime");
    assert(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(iso) && ends !== iso && ends.length > 0,
      "the end in local time: " + ends + " (" + iso + ")");
    const big = path.join(work, "too-big.dcm");
    fs.closeSync(fs.openSync(big, "w"));
    fs.truncateSync(big, max + 1); /* sparse: nothing is written */
    await page.setInputFiles("#files", [big, info.files[0]]);
    await page.click("#send");
    const items = await settled(page, 2);
    const b = items.find((x) => x.name === "too-big.dcm");
    assert(b.cls === "refused" && b.state.includes("skipped: too large"), "skipped: " + JSON.stringify(b));
    assert(items.find((x) => x.name !== "too-big.dcm").cls === "ok", "the other sent: " + JSON.stringify(items));
    assert(sent.length === 1, "one file sent: " + sent.length);
    await screenshot(page, "too-big");
    fs.rmSync(big);
    await guest.close();
  });

  await step("without a session cookie the first file goes alone: three files, one use", async () => {
    const r = await api("POST", "/api/v1/worklists/location:ct/upload-links", { message: "three files" });
    assert(r.status === 201, "link created: " + r.status);
    const link = (await r.json()).url;
    const guest = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await guest.newPage();
    const sent = watchFiles(page);
    await page.goto(link);
    await page.waitForSelector("#upload-form");
    assert(await uses(link) === 1, "the page opened the session");
    // The page's session cookie is lost (expired, or not kept): the first
    // answer brings a new one, which the two other files then carry.
    await guest.clearCookies();
    await page.setInputFiles("#files", info.files.slice(0, 3));
    await page.click("#send");
    const items = await settled(page, 3);
    assert(items.every((x) => x.cls === "ok"), "all received: " + JSON.stringify(items));
    assert(sent.length === 3, "three requests: " + sent.length);
    const first = sent[0];
    assert(first.answered !== null && sent.slice(1).every((x) => x.at > first.answered),
      "the others after the first answer: " + JSON.stringify(sent.map((x) => [x.at, x.answered])));
    assert(await uses(link) === 2, "one use for the three files: " + await uses(link));
    await screenshot(page, "three-files-one-use");
    // The link is deleted: the next files stop at the first answer (404),
    // and the page says to reload.
    const id = (await (await api("GET", "/api/v1/worklists/location:ct/upload-links")).json())
      .links.find((x) => x.url === link).id;
    assert((await api("DELETE", "/api/v1/upload-links/" + encodeURIComponent(id))).status === 204, "deleted");
    await page.setInputFiles("#files", info.files.slice(0, 3));
    await page.click("#send");
    await page.waitForSelector("#session-ended");
    const after = await settled(page, 6);
    assert((await page.textContent("#session-ended")).includes("Your upload session has ended: reload the page"),
      "the message");
    assert(after.slice(3).every((x) => x.cls === "refused"), "none received: " + JSON.stringify(after.slice(3)));
    assert(await page.isDisabled("#send"), "nothing more is sent");
    await screenshot(page, "session-ended");
    await guest.close();
  });
} catch (e) {
  results.push(["setup", false]);
  console.log("FAIL setup: " + (e && e.stack ? e.stack : e));
} finally {
  if (browser)
    await browser.close();
  stack.kill("SIGTERM");
  await new Promise((r) => stack.exitCode !== null ? r() : stack.on("exit", r));
  fs.rmSync(work, { recursive: true, force: true });
}

const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed;
console.log(passed + " passed, " + failed + " failed");
process.exit(failed === 0 ? 0 : 1);
