// driver.mjs: a headless Chromium for test_status_page.py, driven over stdin/stdout in JSON
// lines: the test writes {"id": N, "cmd": "...", ...} and reads {"id": N, "ok": true,
// "result": ...} or {"id": N, "ok": false, "error": "..."}. One browser, several contexts
// (each its own sessionStorage, so each its own signed-in identity), one page per context.
//
// usage: node driver.mjs BASE_URL        (e.g. http://127.0.0.1:40713)
//
// It uses Debian's Chromium (RIPCORD_CHROMIUM, default /usr/bin/chromium) through
// playwright-core and never downloads a browser. --no-sandbox: the tests run as root, where
// Chromium's sandbox refuses to start. Every command is bounded by its own timeout; the driver
// exits when its stdin closes (the test ended, however it ended).
//
// Per context it records what the status page must never do: console errors (a CSP violation
// is reported there), uncaught page errors, requests to any origin but BASE_URL, and
// securitypolicyviolation events (listened for by an init script, which the page's CSP does
// not govern).
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const base = process.argv[2];
if (!base) {
  process.stderr.write('usage: node driver.mjs BASE_URL\n');
  process.exit(2);
}
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.RIPCORD_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  timeout: 30000,
});

const ctxs = new Map();

function ctxOf(name) {
  const c = ctxs.get(name);
  if (!c) throw new Error('no context ' + JSON.stringify(name));
  return c;
}

async function open({ name, width = 1280, height = 900, path = '/' }) {
  if (ctxs.has(name)) throw new Error('context exists: ' + name);
  const context = await browser.newContext({ viewport: { width, height }, serviceWorkers: 'block' });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const c = { context, page, console: [], errors: [], foreign: [], requests: 0 };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') c.console.push(m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => c.errors.push(String(e && e.message)));
  page.on('request', (r) => {
    c.requests++;
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) c.foreign.push(u);
  });
  ctxs.set(name, c);
  await page.goto(base + path, { waitUntil: 'load' });
  return { title: await page.title() };
}

// Waits until document.querySelector(selector)'s text contains text; returns how long it
// took (ms, measured here).
async function waitText({ name, selector, text, timeout = 10000 }) {
  const { page } = ctxOf(name);
  const t0 = Date.now();
  try {
    await page.waitForFunction(([sel, want]) => {
      const e = document.querySelector(sel);
      return !!e && e.textContent.includes(want);
    }, [selector, text], { timeout, polling: 20 });
  } catch (e) {
    const got = await page.evaluate((sel) => {
      const e = document.querySelector(sel);
      return e ? e.textContent : null;
    }, selector).catch(() => null);
    throw new Error('waiting for ' + JSON.stringify(text) + ' in ' + selector + ': ' +
      (got === null ? 'no such element' : 'it says ' + JSON.stringify(got.slice(0, 400))));
  }
  return { ms: Date.now() - t0 };
}

const commands = {
  open,
  wait_text: waitText,
  async text({ name, selector }) {
    return ctxOf(name).page.evaluate((sel) => {
      const e = document.querySelector(sel);
      return e ? e.textContent : null;
    }, selector);
  },
  async count({ name, selector }) {
    return ctxOf(name).page.evaluate((sel) => document.querySelectorAll(sel).length, selector);
  },
  async fill({ name, selector, value }) {
    await ctxOf(name).page.fill(selector, value);
    return null;
  },
  async click({ name, selector }) {
    await ctxOf(name).page.click(selector);
    return null;
  },
  async press({ name, key }) {
    await ctxOf(name).page.keyboard.press(key);
    return null;
  },
  // What has the keyboard focus: enough to find a control by Tab alone.
  async focused({ name }) {
    return ctxOf(name).page.evaluate(() => {
      const a = document.activeElement;
      if (!a) return null;
      return { tag: a.tagName.toLowerCase(), id: a.id || null, key: a.getAttribute('data-key'),
        action: a.getAttribute('data-action'), label: a.getAttribute('aria-label'),
        text: (a.textContent || '').trim().slice(0, 80),
        outline: getComputedStyle(a).outlineStyle + ' ' + getComputedStyle(a).outlineWidth };
    });
  },
  async eval({ name, expr }) {
    return ctxOf(name).page.evaluate(expr);
  },
  async reload({ name }) {
    await ctxOf(name).page.reload({ waitUntil: 'load' });
    return null;
  },
  async screenshot({ name, path, full = true }) {
    await ctxOf(name).page.screenshot({ path, fullPage: full });
    return { path };
  },
  async report({ name }) {
    const c = ctxOf(name);
    const csp = await c.page.evaluate(() => window.__csp || []).catch(() => ['(page gone)']);
    return { console: c.console, errors: c.errors, foreign: c.foreign, csp, requests: c.requests };
  },
  async clear_report({ name }) {
    const c = ctxOf(name);
    c.console.length = 0;
    c.errors.length = 0;
    c.foreign.length = 0;
    c.requests = 0;
    await c.page.evaluate(() => { window.__csp = []; });
    return null;
  },
  async close({ name }) {
    const c = ctxOf(name);
    ctxs.delete(name);
    await c.context.close();
    return null;
  },
};

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function handle(msg) {
  const fn = commands[msg.cmd];
  if (!fn) throw new Error('unknown command ' + JSON.stringify(msg.cmd));
  // A bound on every command, over playwright's own timeouts.
  const limit = (msg.timeout || 10000) + 5000;
  let timer;
  const guard = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(msg.cmd + ': no result within ' + limit + ' ms')), limit); });
  try {
    return await Promise.race([fn(msg), guard]);
  } finally {
    clearTimeout(timer);
  }
}

let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  // One command at a time, in order: the test waits for each answer anyway.
  queue = queue.then(async () => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      reply({ id: null, ok: false, error: 'bad JSON: ' + e.message });
      return;
    }
    if (msg.cmd === 'quit') {
      reply({ id: msg.id, ok: true, result: null });
      rl.close();
      return;
    }
    try {
      reply({ id: msg.id, ok: true, result: await handle(msg) });
    } catch (e) {
      reply({ id: msg.id, ok: false, error: String((e && e.message) || e) });
    }
  });
});
rl.on('close', () => {
  queue.then(() => browser.close()).catch(() => {}).finally(() => process.exit(0));
});
reply({ id: 0, ok: true, result: { ready: true, chromium: browser.version() } });
