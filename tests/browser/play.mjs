// Plays an hls-dvr stream in Debian's headless Chromium with hls.js. Prints one JSON line; exit 0
// when the checks pass.
//   node play.mjs PAGE_URL [SEEK_BACK_SECONDS]   a live stream: seeks back into the DVR window and
//                                                checks playback goes on
//   node play.mjs PAGE_URL ended                 a clip: plays it to its end (the 'ended' event)
//   node play.mjs PAGE_URL watch                 a live stream: plays until standard input
//                                                closes, then reports how far it played, its
//                                                stalls and hls.js's failed loads
import { drive } from './chromium.mjs';

const pageUrl = process.argv[2];
const toEnd = process.argv[3] === 'ended';
const watch = process.argv[3] === 'watch';
const seekBack = Number(process.argv[3] || 60);
// Plays on until the caller closes our standard input; a fatal hls.js error ends it early.
// Reports media time played against wall time, stalls ('waiting' until 'playing') and the loads
// hls.js had to retry (its non-fatal network errors).
async function watchUntilStdinCloses(page, video, result) {
  const closed = new Promise(done => {
    process.stdin.on('end', done);
    process.stdin.on('close', done);
    process.stdin.resume();
  });
  let open = true;
  closed.then(() => { open = false; });
  await page.evaluate(() => {
    const v = document.getElementById('video');
    const w = window.watch = { stalls: 0, stalledMs: 0, since: null };
    v.addEventListener('waiting', () => {
      if (w.since === null) { w.stalls++; w.since = performance.now(); }
    });
    v.addEventListener('playing', () => {
      if (w.since !== null) { w.stalledMs += performance.now() - w.since; w.since = null; }
    });
  });
  const first = await video();
  let last = first;
  while (open) {
    await new Promise(r => setTimeout(r, 500));
    last = await video();
    if (last.errors.length) throw new Error(`fatal player error ${last.errors.join(', ')}`);
  }
  const w = await page.evaluate(() => {
    const w = window.watch;
    const now = w.since === null ? 0 : performance.now() - w.since;
    return { stalls: w.stalls, stalledMs: w.stalledMs + now,
             failedLoads: window.playerErrors.filter(e => e.startsWith('networkError/')) };
  });
  // Both clocks read in the page, in the same sample: a slow round trip to it cannot skew them.
  result.wallS = (last.now - first.now) / 1000;
  result.playedS = last.t - first.t;
  result.stalls = w.stalls;
  result.stalledS = w.stalledMs / 1000;
  result.failedLoads = w.failedLoads;
}

const result = { ok: false };
await drive(result, async browser => {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  const video = () => page.evaluate(() => {
    const v = document.getElementById('video');
    return { t: v.currentTime, paused: v.paused,
             start: v.seekable.length ? v.seekable.start(0) : null,
             end: v.seekable.length ? v.seekable.end(0) : null,
             duration: v.duration, ended: window.videoEnded, now: performance.now(),
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
  if (watch) {
    await watchUntilStdinCloses(page, video, result);
  } else if (toEnd) {
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
});
