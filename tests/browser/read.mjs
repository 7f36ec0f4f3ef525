// Opens a page in a real (headless) Chromium and prints what a driver reads on it as JSON:
// { url, title, lines: [{ text, kind, unit, price }], custom: [text], estimate, hold }.
// `lines` are the price page's `.price-line` items (with their data- attributes), `custom`
// the hosted checkout page's `custom_text` lines (`.custom-text-line`).
//   node read.mjs <url>
import { launch } from './chromium.mjs';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node read.mjs <url>');
  process.exit(2);
}
const browser = await launch();
try {
  const page = await browser.newPage();
  const response = await page.goto(url);
  const lines = await page.locator('.price-line').evaluateAll((els) => els.map((el) => ({
    text: el.innerText.trim(),
    kind: el.dataset.kind ?? null,
    unit: el.dataset.unit ?? null,
    price: el.dataset.price ?? null,
  })));
  const custom = await page.locator('.custom-text-line').evaluateAll((els) => els.map((el) => el.innerText.trim()));
  const text = async (selector) => (await page.locator(selector).count()) ? (await page.innerText(selector)).trim() : null;
  console.log(JSON.stringify({
    url: page.url(),
    status: response ? response.status() : null,
    title: await page.title(),
    lines,
    custom,
    estimate: await text('#estimate'),
    hold: await text('#hold'),
  }));
} finally {
  await browser.close();
}
