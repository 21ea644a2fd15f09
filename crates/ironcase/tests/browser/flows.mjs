// The console's main flows in a real browser (Debian's chromium, driven by
// playwright-core), against a server the Rust test started and filled
// (tests/api/browser.rs). Every check that fails throws; the process exits
// non-zero and the Rust test fails with this output. Screenshots of each
// main page go to SHOTS (at 1280 and 390 px wide), and axe-core checks each
// for serious or critical accessibility violations.

import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { BASE, CHROMIUM, SHOTS, FIXTURE } = process.env;
const fx = JSON.parse(FIXTURE);
mkdirSync(SHOTS, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

// RFC 6238 with SHA-1, 30 s, 6 digits, from a base32 secret.
function totp(secret, stepsAhead = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + stepsAhead));
  const mac = createHmac("sha1", key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const pagesSeen = [];

async function context(width = 1280) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  ctx.on("response", (r) => {
    const type = r.headers()["content-type"] || "";
    if (r.url().startsWith(BASE) && type.startsWith("text/html")) {
      pagesSeen.push([r.url(), r.headers()["content-security-policy"] || ""]);
    }
  });
  return ctx;
}

async function signIn(page, email, password) {
  await page.goto(`${BASE}/signin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("form[action='/signin'] button[type=submit]");
}

// axe-core, in a context that lets it inject itself past the page's CSP.
async function accessible(url, cookies, name) {
  const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  await ctx.addCookies(cookies);
  const page = await ctx.newPage();
  await page.goto(url);
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `${name}: no serious or critical accessibility violation ${JSON.stringify(bad.map((v) => [v.id, v.nodes.map((n) => n.target)]))}`);
  await ctx.close();
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

// 1. The owner signs in, files an incident through the form, and works it.
const ownerCtx = await context();
const owner = await ownerCtx.newPage();
await owner.goto(`${BASE}/`);
check(owner.url().startsWith(`${BASE}/signin?next=`), "not signed in: to the sign-in page");
await shot(owner, "signin");
await signIn(owner, fx.owner.email, fx.owner.password);
await owner.waitForURL(`${BASE}/`);
check(await owner.isVisible("table.queue"), "the queue after signing in");
await shot(owner, "queue");
await owner.click("a[href='/incidents/new']");
await owner.fill("#title", "Beaconing from the build server");
await owner.selectOption("#severity", "high");
await owner.selectOption("#category", "malware");
await owner.fill("#tags", "build, c2");
await owner.fill("#description", "Outbound to 203.0.113.7 every 60 s.");
await owner.click("form.incident-new button[type=submit]");
await owner.waitForURL(/\/incidents\/inc_/);
const incidentUrl = owner.url();
check((await owner.textContent("h1")).includes("Beaconing from the build server"), "the new incident's page");

// 2. An analyst watches the same incident in a second browser.
const analystCtx = await context();
const analyst = await analystCtx.newPage();
await signIn(analyst, fx.analyst.email, fx.analyst.password);
await analyst.waitForURL(`${BASE}/`);
await analyst.goto(incidentUrl);

// 3. The owner comments and moves it; the analyst sees both without reloading.
await owner.fill("#body", "Isolated the host; imaging now.");
await owner.click("form.comment button[type=submit]");
await owner.waitForSelector("text=Isolated the host; imaging now.");
await analyst.waitForSelector("text=Isolated the host; imaging now.", { timeout: 5000 });
check(true, "a comment appears live in another member's browser");
await owner.selectOption("form.workflow #status", "triaged");
await owner.click("form.workflow button[type=submit]");
await owner.waitForSelector(".badge.status-triaged");
await analyst.waitForSelector("text=moved it from open to triaged", { timeout: 5000 });
check(true, "a status change appears live too");
await owner.fill("#ioc-text", "C2 at evil-c2[.]example, dropped from hxxp://203.0.113.7/stage2");
await owner.click("form.ioc-extract button[type=submit]");
await owner.waitForSelector("#indicators code:text('evil-c2.example')");
check((await owner.locator("#indicators li").count()) >= 2, "indicators found in pasted text");
await owner.click("#indicators a:has-text('evil-c2.example')");
check((await owner.textContent("main")).includes("Seen in 1 incidents"), "an indicator links to the incidents that saw it");
await owner.goto(incidentUrl);
const capture = Buffer.from("GET /stage2 HTTP/1.1\r\nHost: 203.0.113.7\r\n\r\n".repeat(20000));
await owner.setInputFiles("#evidence-file", { name: "stage2.pcap", mimeType: "application/octet-stream", buffer: capture });
await owner.click("form.evidence-upload button[type=submit]");
await owner.waitForSelector("#evidence a:text('stage2.pcap')");
const expected = (await import("node:crypto")).createHash("sha256").update(capture).digest("hex");
check((await owner.textContent("#evidence")).includes(expected), "evidence uploads, with its SHA-256 shown");
const [download] = await Promise.all([owner.waitForEvent("download"), owner.click("#evidence a[download]")]);
const got = (await import("node:crypto")).createHash("sha256").update(readFileSync(await download.path())).digest("hex");
check(got === expected, "the download is the file uploaded");
await owner.click("#evidence a:text('stage2.pcap')");
const custody = await owner.textContent("ol.custody");
check(custody.includes("uploaded") && custody.includes("downloaded"), "the chain of custody records both");
await shot(owner, "evidence");
await owner.goto(incidentUrl);
await shot(owner, "incident");

// 4. Search with facets.
await owner.goto(`${BASE}/search?q=beaconing`);
check((await owner.textContent(".hits")).includes("Beaconing from the build server"), "search finds it");
check(await owner.isVisible("aside.facets a"), "facets with counts");
await owner.click("aside.facets section.facet:first-child a");
check(owner.url().includes("severity%3A"), "a facet narrows the query");
await shot(owner, "search");

// 4b. An API key, shown once with a copy button; my account.
await owner.goto(`${BASE}/keys`);
await owner.fill("#name", "siem forwarder");
await owner.click("form.key-new button[type=submit]");
const key = (await owner.textContent("#new-key")).trim();
check(key.startsWith("ick_") && (await owner.isVisible("button[data-copy=new-key]")), "a new API key is shown with a copy button");
await shot(owner, "keys");
await owner.goto(`${BASE}/keys`);
check(!(await owner.content()).includes(key), "the key is shown once");
await owner.goto(`${BASE}/account`);
check(await owner.isVisible("text=Sessions"), "my account");
await shot(owner, "account");

// 4c. A member invited through the console joins through the link.
await owner.goto(`${BASE}/members`);
await owner.fill("form.invite #email", "joiner@example.com");
await owner.click("form.invite button[type=submit]");
const note = await owner.textContent("p.notice");
const link = note.slice(note.indexOf("http"));
check(link.includes("/invitation#token=ici_"), `an invitation's link, shown once (${link})`);
await shot(owner, "members");
const joinerCtx = await context();
const joiner = await joinerCtx.newPage();
await joiner.goto(link.replace(/^https?:\/\/[^/]+/, BASE));
check(!joiner.url().includes("token="), "the token leaves the address bar");
await joiner.fill("#name", "Jo Iner");
await joiner.fill("#password", "correct horse battery staple");
await joiner.click("form.token-form button[type=submit]");
await joiner.waitForURL(/\/signin\?joined=1/);
await signIn(joiner, "joiner@example.com", "correct horse battery staple");
await joiner.waitForURL(`${BASE}/`);
check(await joiner.isVisible("table.queue"), "the invited member joins and signs in");
await owner.goto(`${BASE}/audit`);
check((await owner.textContent("main")).includes("The chain verifies"), "the audit log and its verification");
await shot(owner, "audit");
await owner.goto(`${BASE}/dashboard`);
check((await owner.locator("figure.chart svg").count()) === 3, "the dashboard's three charts");
await shot(owner, "dashboard");
await owner.goto(`${BASE}/settings`);
check(await owner.isVisible("meter"), "the plan's usage as bars");
await shot(owner, "organisation");

// 5. A viewer, signing in with the keyboard only, sees no edit controls; a
//    forced post is refused.
const viewerCtx = await context();
const viewer = await viewerCtx.newPage();
await viewer.goto(`${BASE}/signin`);
await viewer.focus("#email");
await viewer.keyboard.type(fx.viewer.email);
await viewer.keyboard.press("Tab");
await viewer.keyboard.type(fx.viewer.password);
await viewer.keyboard.press("Enter");
await viewer.waitForURL(`${BASE}/`);
check(true, "signing in works from the keyboard");
await viewer.goto(incidentUrl);
check((await viewer.locator("form.comment, form.workflow").count()) === 0, "a viewer sees no edit controls");
const forced = await viewer.evaluate(async (url) => {
  const r = await fetch(`${url}/comments`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "body=forced" });
  return r.status;
}, incidentUrl);
check(forced === 403, `a forced post is refused (${forced})`);
const csrf = await viewer.getAttribute("form.signout input[name=csrf]", "value");
const withToken = await viewer.evaluate(async ([url, token]) => {
  const r = await fetch(`${url}/comments`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `csrf=${token}&body=forced` });
  return r.status;
}, [incidentUrl, csrf]);
check(withToken === 403, `even with the session's CSRF token, the role refuses (${withToken})`);

// 5b. The keyboard alone: an analyst files an incident, comments and moves
//     it on, reaching every control with Tab and acting with the keys.
async function tabTo(page, selector, limit = 80) {
  for (let i = 0; i < limit; i++) {
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`check failed: ${selector} is not reachable with Tab`);
}
await analyst.goto(`${BASE}/incidents/new`);
await tabTo(analyst, "#title");
await analyst.keyboard.type("Keyboard-only report");
await tabTo(analyst, "#severity");
await analyst.keyboard.press("ArrowDown");
await tabTo(analyst, "#description");
await analyst.keyboard.type("Filed without a mouse.");
await tabTo(analyst, "form.incident-new button[type=submit]");
await analyst.keyboard.press("Enter");
await analyst.waitForURL(/\/incidents\/inc_/);
check((await analyst.textContent("h1")) === "Keyboard-only report", "an incident filed from the keyboard");
await tabTo(analyst, "#body");
await analyst.keyboard.type("Noted from the keyboard.");
await tabTo(analyst, "form.comment button[type=submit]");
await analyst.keyboard.press("Enter");
await analyst.waitForSelector("text=Noted from the keyboard.");
await tabTo(analyst, "form.workflow #status");
await analyst.keyboard.press("ArrowDown");
await tabTo(analyst, "form.workflow button[type=submit]");
await analyst.keyboard.press("Enter");
await analyst.waitForSelector("text=moved it from open to");
check(true, "commented and moved on from the keyboard");

// 5c. An alert from a detection tool, promoted into an incident.
await owner.goto(`${BASE}/alerts`);
await owner.click(`a[href='/alerts/${fx.alert_id}']`);
await shot(owner, "alert");
await owner.selectOption("form.promote #category", "unauthorized_access");
await owner.click("form.promote button[type=submit]");
await owner.waitForURL(/\/incidents\/inc_/);
check((await owner.textContent("#indicators")).includes("198.51.100.23"), "an alert promoted: its observable is the incident's indicator");

// 6. Another organisation's incident is a 404 page like any other.
const res = await owner.goto(`${BASE}/incidents/${fx.foreign_incident}`);
check(res.status() === 404 && (await owner.textContent("h1")) === "Not found", "another organisation's incident is a 404 page");
await shot(owner, "not-found");

// 7. A second factor at sign-in.
const mfaCtx = await context();
const mfa = await mfaCtx.newPage();
await signIn(mfa, fx.mfa.email, fx.mfa.password);
await mfa.waitForSelector("#code");
await mfa.fill("#code", totp(fx.mfa.secret, 1));
await mfa.click("form[action='/signin/mfa'] button[type=submit]");
await mfa.waitForURL(`${BASE}/`);
check(true, "signing in with a second factor");

// 7b. Single sign-on: the organisation's provider (a real oidc-provider),
//     its own login form, and back into the console signed in.
if (fx.sso) {
  const ssoCtx = await context();
  const sso = await ssoCtx.newPage();
  await sso.goto(`${BASE}/signin`);
  await sso.fill("#sso-org", fx.sso.organization);
  await sso.click("form.sso button[type=submit]");
  await sso.waitForSelector("input[name=login]", { timeout: 10000 }).catch(async (e) => {
    throw new Error(`no provider login form at ${sso.url()}: ${(await sso.textContent("body")).slice(0, 500)}`);
  });
  check(!sso.url().startsWith(BASE), "to the organisation's provider");
  await shot(sso, "sso-provider");
  await sso.fill("input[name=login]", fx.sso.login);
  await sso.fill("input[name=password]", "any");
  await sso.click("button[type=submit]");
  await sso.waitForURL(`${BASE}/`);
  check(await sso.isVisible("table.queue"), "signed in through the provider");
  await sso.goto(`${BASE}/account`);
  check((await sso.textContent("main")).includes(fx.sso.email), "as the provider's account, made at its first sign-in");
  await ssoCtx.close();
} else {
  console.log("skip - single sign-on: no oidc-provider here (npm ci --prefix crates/ironcase/tests/oidc)");
}

// 8. At 390 px wide: nothing wider than the screen.
const narrowCtx = await context(390);
await narrowCtx.addCookies(await ownerCtx.cookies());
const narrow = await narrowCtx.newPage();
for (const [path, name] of [["/", "queue-390"], [new URL(incidentUrl).pathname, "incident-390"], ["/search?q=beaconing", "search-390"]]) {
  await narrow.goto(`${BASE}${path}`);
  const wide = await narrow.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 392, `${name}: fits 390 px (${wide})`);
  await shot(narrow, name);
}

// 9. Accessibility of the main pages.
const cookies = await ownerCtx.cookies();
for (const [path, name] of [["/signin", "sign-in"], ["/", "queue"], [new URL(incidentUrl).pathname, "incident"], ["/search?q=beaconing", "search"], ["/incidents/new", "new incident"], ["/keys", "API keys"], ["/account", "my account"], ["/members", "members"], ["/audit", "audit log"], ["/dashboard", "dashboard"], ["/settings", "organisation"], ["/platform/organizations", "organisations"], ["/roles", "roles"], ["/settings/sso", "single sign-on"], [`/members/${fx.analyst_id}`, "a member"], [`/platform/organizations/${fx.organization_id}`, "an organisation's plan"], ["/children", "organisations under this one"], ["/alerts", "alerts"], [`/alerts/${fx.alert_id}`, "an alert"], ["/webhooks", "webhooks"], ["/notifications", "notifications"], ["/analyzers", "analyzers"], ["/account/notifications", "my e-mail notifications"], ["/settings/retention", "retention"], ["/breaches", "breaches"], ["/compliance/soc2", "a compliance report"], ["/privacy", "data-subject requests"], ["/indicators?value=evil-c2.example", "an indicator"]]) {
  await accessible(`${BASE}${path}`, path === "/signin" ? [] : cookies, name);
}

// 10. Every page carried the Content-Security-Policy.
const bare = pagesSeen.filter(([, csp]) => !csp.includes("default-src 'self'") || csp.includes("unsafe-inline"));
check(pagesSeen.length > 10 && bare.length === 0, `the CSP on every page (${pagesSeen.length} seen) ${JSON.stringify(bare)}`);

await browser.close();
console.log(`screenshots in ${SHOTS}`);
