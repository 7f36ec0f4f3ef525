// Opens a payment page in a real (headless) Chromium, pays with a card number, and prints what
// the driver ends up seeing as JSON: { url, amount, error, state }.
//   node pay.mjs <payment url> <card number>
import { launch } from './chromium.mjs';

const [url, card] = process.argv.slice(2);
if (!url || !card) {
  console.error('usage: node pay.mjs <payment url> <card number>');
  process.exit(2);
}
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url);
  const amount = (await page.textContent('#amount'))?.trim() ?? null;
  await page.fill('input[name=card_number]', card);
  await Promise.all([page.waitForLoadState('load'), page.click('#pay')]);
  await page.waitForLoadState('load');
  const text = async (selector) => (await page.locator(selector).count()) ? (await page.textContent(selector))?.trim() : null;
  console.log(JSON.stringify({ url: page.url(), amount, error: await text('#error'), state: await text('#state') }));
} finally {
  await browser.close();
}
