// Opens a session's payment return page in a real (headless) Chromium, follows its receipt link
// and prints what the driver sees on the receipt as JSON:
// { state, receipt_url, pdf_url, fields: { <id>: text }, lines: [[cell, ...], ...] }.
//   node receipt.mjs <return page url>
import { launch } from './chromium.mjs';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node receipt.mjs <return page url>');
  process.exit(2);
}
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url);
  const text = async (selector) => (await page.locator(selector).count()) ? (await page.textContent(selector))?.trim() : null;
  const state = await text('#state');
  const link = page.locator('#receipt');
  if (!(await link.count())) {
    console.log(JSON.stringify({ state, receipt_url: null }));
    process.exit(0);
  }
  await Promise.all([page.waitForLoadState('load'), link.click()]);
  await page.waitForLoadState('load');
  const fields = {};
  for (const id of ['operator', 'operator-address', 'tax-id', 'station', 'station-address', 'connector', 'session',
                    'energy', 'duration', 'charging-time', 'parking-time', 'card', 'total-excl', 'total-vat',
                    'total-incl', 'authorized', 'captured', 'released']) {
    fields[id] = await text(`#${id}`);
  }
  const lines = await page.$$eval('#lines tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  const pdf = await page.getAttribute('#pdf', 'href');
  console.log(JSON.stringify({ state, receipt_url: page.url(), pdf_url: pdf, fields, lines }));
} finally {
  await browser.close();
}
