// tests/browser/upload.test.mjs - the guest upload page /u/{token} in
// Debian's headless Chromium (playwright-core).
//
//   node tests/browser/upload.test.mjs
//
// Starts its own stack (upload_stack.py: uploads enabled, two upload links
// of location:ct, DICOM files made by dcmtk), then: a guest opens the
// link, picks three DICOM files in both transfer syntaxes and a text file,
// sees a progress bar and an outcome per file (the text file refused) and
// the studies received; the studies are in alice's worklist; a guest of
// the password link gets the password form first, a wrong password says
// how many tries remain, the right one opens the page.  Screenshots go to
// $ARTIFACTS (default tests/artifacts).  Prints "N passed, N failed" last.
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
    await screenshot(page, "received");
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
