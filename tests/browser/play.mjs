// Plays an hls-dvr stream in Debian's headless Chromium with hls.js. Prints one JSON line; exit 0
// when the checks pass.
//   node play.mjs PAGE_URL [SEEK_BACK_SECONDS]   a live stream: seeks back into the DVR window and
//                                                checks playback goes on
//   node play.mjs PAGE_URL ended                 a clip: plays it to its end (the 'ended' event)
import { chromium } from 'playwright-core';

const pageUrl = process.argv[2];
const toEnd = process.argv[3] === 'ended';
const seekBack = Number(process.argv[3] || 60);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--autoplay-policy=no-user-gesture-required'],
});
const result = { ok: false };
try {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  const video = () => page.evaluate(() => {
    const v = document.getElementById('video');
    return { t: v.currentTime, paused: v.paused,
             start: v.seekable.length ? v.seekable.start(0) : null,
             end: v.seekable.length ? v.seekable.end(0) : null,
             duration: v.duration, ended: window.videoEnded,
             errors: window.playerErrors.filter(e => e.endsWith('/true')) };
  });
  const waitFor = async (what, ms, pred) => {
    const until = Date.now() + ms;
    for (;;) {
      const v = await video();
      if (pred(v)) return v;
      if (v.errors.length) throw new Error(`${what}: fatal player error ${v.errors.join(', ')}`);
      if (Date.now() > until) throw new Error(`${what}: timed out, last state ${JSON.stringify(v)}`);
      await new Promise(r => setTimeout(r, 250));
    }
  };
  result.started = await waitFor('start playing', 30000, v => v.t > 1 && !v.paused);
  if (toEnd) {
    const end = await waitFor('play to the end', 90000, v => v.ended);
    result.duration = end.duration;
    result.endedAt = end.t;
  } else {
    const before = await waitFor('seekable window', 20000, v => v.end !== null && v.end - v.start > seekBack + 5);
    result.window = [before.start, before.end];
    const target = before.end - seekBack;
    await page.evaluate(t => { document.getElementById('video').currentTime = t; }, target);
    result.seekTo = target;
    const after = await waitFor('play after seeking back', 30000, v => v.t > target + 3 && v.t < target + 30);
    result.afterSeek = after.t;
  }
  result.ok = true;
} catch (e) {
  result.error = String(e.message || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
