// What the browser drivers share: Debian's headless Chromium, launched the same way, and their
// report, one JSON line on standard output (`"ok":true` and exit 0 when the checks passed; the
// failure's message in `error` otherwise).
import { chromium } from 'playwright-core';

export async function drive(result, body) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    await body(browser);
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.error = String(e.message || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}
