// The statistics page in Chromium: `node stats.mjs URL SCREENSHOT.png` loads the page, waits
// until it has drawn its charts (or reported an error), counts the pixels each chart's canvas
// painted, and saves a screenshot. Reports what the page drew as one JSON line.
import { drive } from './chromium.mjs';

const [url, shot] = process.argv.slice(2);
const result = { url };
await drive(result, async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.drawn || document.body.dataset.error, null, { timeout: 20000 });
  Object.assign(result, await page.evaluate(() => ({ ...document.body.dataset })));
  if (result.error) throw new Error('the page says: ' + result.error);
  // Painted pixels per chart: a chart that drew its series is far from blank.
  result.painted = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  }));
  // uPlot's stylesheet applied: each chart's legend sits below its plot, not over it.
  result.legendsBelow = await page.evaluate(() => [...document.querySelectorAll('.uplot')].every((u) => {
    const plot = u.querySelector('.u-wrap'), legend = u.querySelector('.u-legend');
    return plot && legend && legend.getBoundingClientRect().top >= plot.getBoundingClientRect().bottom - 1;
  }));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
});
