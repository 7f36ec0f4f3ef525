// Opens a page of the Temporal Web UI in a real (headless) Chromium and reads it as views: the
// page as it opens, then each tab named with --tab (e.g. "User Metadata"). In each view it waits
// (up to 30 s) until the text holds that view's expected strings (the UI renders the history
// after its API calls, and Markdown in iframes), then saves a full-page screenshot (<shot>, then
// <shot>-<n>.png). Prints JSON: { url, shots: [...], found: [...], missing: [...], text }.
//   node temporal-ui.mjs <url> <screenshot.png> <expected>... [--tab <name> <expected>...]...
import { launch } from './chromium.mjs';

const [url, shot, ...rest] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node temporal-ui.mjs <url> <screenshot.png> <expected>... [--tab <name> <expected>...]...');
  process.exit(2);
}
const views = [{ tab: null, expected: [] }];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--tab') views.push({ tab: rest[++i], expected: [] });
  else views[views.length - 1].expected.push(rest[i]);
}
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
  await page.goto(url, { waitUntil: 'load' });
  // Every frame's text: the UI renders Markdown (summaries, details) in iframes.
  const text = async () => {
    const parts = [];
    for (const frame of page.frames()) {
      parts.push(await frame.evaluate(() => document.body?.innerText ?? '').catch(() => ''));
    }
    return parts.join('\n');
  };
  const shots = [];
  const found = [];
  const missing = [];
  let seen = '';
  for (const [n, view] of views.entries()) {
    if (view.tab) {
      await page.getByRole('tab', { name: view.tab }).or(page.getByRole('link', { name: view.tab })).first().click();
    }
    const deadline = Date.now() + Number(process.env.UI_WAIT_MS || 30000);
    let body = await text();
    while (view.expected.some((e) => !body.includes(e)) && Date.now() < deadline) {
      await page.waitForTimeout(250);
      body = await text();
    }
    seen += '\n' + body;
    for (const e of view.expected) (body.includes(e) ? found : missing).push(e);
    const path = n === 0 ? shot : shot.replace(/\.png$/, '') + `-${n}.png`;
    await page.screenshot({ path, fullPage: true });
    shots.push(path);
  }
  console.log(JSON.stringify({ url: page.url(), shots, found, missing, text: seen }));
} finally {
  await browser.close();
}
