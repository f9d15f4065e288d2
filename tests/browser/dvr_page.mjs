// Drives the DVR player page (nginx-conf/player/index.html) in Debian's headless Chromium through
// its own controls. Prints one JSON line; exit 0 when the checks pass.
//   node dvr_page.mjs PAGE_URL STREAM SCREENSHOT.png
// Checks: STREAM is listed and plays; typing a wall-clock time 40 s back into #seek-time and
// clicking #seek-go lands within 6 s of it and plays on from there; #live returns to the edge;
// picking the last #rendition entry switches hls.currentLevel; #startover-link names the stream
// and a numeric start.
import { drive } from './chromium.mjs';

const [pageUrl, stream, shotPath] = process.argv.slice(2);
if (!pageUrl || !stream || !shotPath) {
  console.log(JSON.stringify({ ok: false, error: 'usage: node dvr_page.mjs PAGE_URL STREAM SCREENSHOT.png' }));
  process.exit(1);
}
const SEEK_BACK_S = 40;
const result = { ok: false, stream };
await drive(result, async browser => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const pageErrors = [];
  page.on('pageerror', e => pageErrors.push(String(e.message || e)));

  // Everything the checks look at, read in one go; also what a failure reports.
  const state = () => page.evaluate(() => {
    const v = document.getElementById('video');
    const d = window.dvr || {};
    return {
      ready: d.ready, stream: d.stream, wallClockMs: d.wallClockMs, behindLiveS: d.behindLiveS,
      errors: d.errors, t: v.currentTime, paused: v.paused, seeking: v.seeking, readyState: v.readyState,
      seekable: v.seekable.length ? [v.seekable.start(0), v.seekable.end(0)] : null,
      targetDuration: window.hls && window.hls.latestLevelDetails ? window.hls.latestLevelDetails.targetduration : null,
      level: window.hls ? window.hls.currentLevel : null,
      listed: [...document.querySelectorAll('#streams [data-stream]')].map(b => b.dataset.stream),
      liveOn: document.getElementById('live').classList.contains('on'),
    };
  });
  // page.waitForFunction with a predicate run in the page; every predicate also returns true on a
  // fatal player error so that it fails at once, reported with the page's state.
  const waitUntil = async (what, ms, pred, arg) => {
    try {
      await page.waitForFunction(pred, arg, { timeout: ms, polling: 250 });
    } catch (e) {
      throw new Error(`${what}: ${e.name === 'TimeoutError' ? 'timed out' : e.message}; state ${JSON.stringify(await state())}`);
    }
    const s = await state();
    if (s.errors && s.errors.length) throw new Error(`${what}: fatal player error ${s.errors.join(', ')}`);
    if (pageErrors.length) throw new Error(`${what}: page error ${pageErrors.join(' | ')}`);
    return s;
  };

  // 1. The stream is listed, chosen, and plays; the whole start gets 60 s.
  const deadline = Date.now() + 60000;
  const left = () => Math.max(1000, deadline - Date.now());
  await page.goto(pageUrl);
  await waitUntil('stream listed', left(), name =>
    (window.dvr && window.dvr.errors.length) ||
    [...document.querySelectorAll('#streams [data-stream]')].some(b => b.dataset.stream === name), stream);
  if ((await state()).stream !== stream) await page.click(`#streams [data-stream="${stream}"]`);
  await waitUntil('ready and playing', left(), name => {
    const d = window.dvr, v = document.getElementById('video');
    if (d.errors.length) return true;
    if (!(d.ready && d.stream === name && !v.paused)) return false;
    if (window.__t0 === undefined) window.__t0 = v.currentTime;   // playback must advance from here
    return v.currentTime > window.__t0 + 1;
  }, stream);
  // Seeking 40 s back needs that much DVR history behind the playing position.
  let s = await waitUntil('DVR history', left(), back => {
    const d = window.dvr, v = document.getElementById('video');
    return d.errors.length || (v.seekable.length && v.currentTime - v.seekable.start(0) > back + 5);
  }, SEEK_BACK_S);
  result.window = s.seekable.map(x => +x.toFixed(1));
  result.targetDuration = s.targetDuration;
  result.startBehindLiveS = s.behindLiveS;
  result.liveWallClock = new Date(s.wallClockMs).toISOString();

  // 2. Seek by wall-clock through the UI: HH:MM:SS (local, as the page reads it) 40 s back.
  const typed = await page.evaluate(ms => {
    const d = new Date(ms), p = n => String(n).padStart(2, '0');
    return { text: `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`, ms: Math.floor(ms / 1000) * 1000 };
  }, s.wallClockMs - SEEK_BACK_S * 1000);
  await page.fill('#seek-time', typed.text);
  await page.click('#seek-go');
  result.seekTyped = typed.text;
  // First state after the seek settles (and the page's 250 ms status caught up with it).
  s = await waitUntil('seek settles', 30000, ({ from }) => {
    const d = window.dvr, v = document.getElementById('video');
    return d.errors.length || (!v.seeking && v.readyState >= 3 && Math.abs(d.wallClockMs - from) > 20000);
  }, { from: s.wallClockMs });
  result.landedOffS = (s.wallClockMs - typed.ms) / 1000;
  if (Math.abs(result.landedOffS) > 6) {
    throw new Error(`seek to ${typed.text} landed ${result.landedOffS} s off (${new Date(s.wallClockMs).toISOString()})`);
  }
  s = await waitUntil('play on after the seek', 30000, ({ t, wall }) => {
    const d = window.dvr, v = document.getElementById('video');
    return d.errors.length || (!v.paused && v.currentTime > t + 3 && d.wallClockMs > wall + 2000);
  }, { t: s.t, wall: s.wallClockMs });
  result.afterSeekWallClock = new Date(s.wallClockMs).toISOString();
  result.afterSeekBehindLiveS = s.behindLiveS;
  if (!(s.behindLiveS > 25)) throw new Error(`after seeking ${SEEK_BACK_S} s back: only ${s.behindLiveS} s behind live`);

  // 3. LIVE: back within about three target durations of the edge, still playing, button lit.
  await page.click('#live');
  s = await waitUntil('back to live', 30000, ({ limit, t }) => {
    const d = window.dvr, v = document.getElementById('video');
    return d.errors.length ||
      (!v.seeking && !v.paused && v.currentTime > t + 10 && d.behindLiveS !== null && d.behindLiveS <= limit);
  }, { limit: 3 * (s.targetDuration || 2) + 4, t: s.t });
  result.liveBehindLiveS = s.behindLiveS;
  result.liveButtonLit = s.liveOn;
  if (!s.liveOn) throw new Error(`#live is not highlighted at ${s.behindLiveS} s behind live`);

  // 4. The last entry of #rendition: hls.currentLevel follows (once its fragments play).
  const choice = await page.$$eval('#rendition option', os => ({ value: os[os.length - 1].value, label: os[os.length - 1].textContent, count: os.length }));
  if (choice.count < 2) throw new Error('#rendition lists no renditions');
  await page.selectOption('#rendition', choice.value);
  s = await waitUntil('rendition switch', 30000, level => {
    const v = document.getElementById('video');
    return window.dvr.errors.length || (window.hls.currentLevel === level && !window.hls.autoLevelEnabled && !v.paused);
  }, Number(choice.value));
  result.rendition = { level: s.level, label: choice.label, options: choice.count };

  // 5. The start-over link plays /live/STREAM/master.m3u8?start=<epoch seconds> in this page.
  const href = await page.getAttribute('#startover-link', 'href');
  const src = new URL(href, pageUrl).searchParams.get('src') || '';
  const srcUrl = new URL(src, pageUrl);
  const start = srcUrl.searchParams.get('start');
  if (srcUrl.pathname !== `/live/${encodeURIComponent(stream)}/master.m3u8` || !/^\d+(\.\d+)?$/.test(start || '')) {
    throw new Error(`#startover-link ${href}: expected ?src=/live/${stream}/master.m3u8?start=<epoch s>`);
  }
  result.startover = src;
  result.clipLinkShown = await page.isVisible('#clip-link');

  // 6. The download link: five minutes up to the picture as one MP4 file, which nginx sends.
  await waitUntil('the download link', 5000, () => !document.getElementById('download-link').classList.contains('hidden'));
  const dl = await page.getAttribute('#download-link', 'href');
  const dlUrl = new URL(dl, pageUrl);
  if (dlUrl.pathname !== `/live/${encodeURIComponent(stream)}/clip.mp4` || !/^\d+$/.test(dlUrl.searchParams.get('end') || '')) {
    throw new Error(`#download-link ${dl}: expected /live/${stream}/clip.mp4?start=<epoch s>&end=<epoch s>`);
  }
  const head = await page.evaluate(async u => {
    const r = await fetch(u, { method: 'HEAD' });
    return { status: r.status, type: r.headers.get('content-type'), length: Number(r.headers.get('content-length')),
             disposition: r.headers.get('content-disposition') };
  }, dl);
  result.download = { href: dl, ...head };
  if (head.status !== 200 || head.type !== 'video/mp4' || !(head.length > 0) || !/^attachment; filename=/.test(head.disposition || '')) {
    throw new Error(`#download-link ${dl}: ${JSON.stringify(head)}`);
  }

  await page.screenshot({ path: shotPath });
  result.screenshot = shotPath;
  if (pageErrors.length) throw new Error(`page error ${pageErrors.join(' | ')}`);
});
